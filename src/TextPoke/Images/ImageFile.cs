using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace TextPoke.Images;

/// <summary>A read-only, bounds-checked view of a whole file: memory-mapped from disk, or bytes made in memory.</summary>
public sealed unsafe class ImageFile : IDisposable
{
    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    readonly byte* _pointer;
    readonly byte[]? _bytes;
    bool _disposed;

    /// <summary>The name used in error messages (the path, or a description for in-memory images).</summary>
    public string Name { get; }

    public long Length { get; }

    ImageFile(string name, MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        Name = name;
        _map = map;
        _view = view;
        Length = length;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _pointer = p + view.PointerOffset;
    }

    ImageFile(string name, byte[] bytes)
    {
        Name = name;
        _bytes = bytes;
        Length = bytes.Length;
    }

    /// <summary>Maps a file read-only. Fails with an <see cref="ImageFormatException"/> naming the file.</summary>
    public static ImageFile Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new ImageFormatException(path, $"cannot open: {Describe(e)}");
        }
        long length = stream.Length;
        if (length == 0)
        {
            stream.Dispose();
            throw new ImageFormatException(path, "empty file");
        }
        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        return new ImageFile(path, map, view, length);
    }

    /// <summary>Wraps bytes made in memory (a decompressed payload, a demo image).</summary>
    public static ImageFile FromBytes(string name, byte[] bytes) => new(name, bytes);

    static string Describe(Exception e) => e switch
    {
        FileNotFoundException => "no such file",
        DirectoryNotFoundException => "no such directory",
        UnauthorizedAccessException => "permission denied",
        _ => e.Message,
    };

    /// <summary>True when [offset, offset+length) lies inside the file.</summary>
    public bool Contains(long offset, long length) =>
        offset >= 0 && length >= 0 && offset <= Length && length <= Length - offset;

    /// <summary>The bytes at [offset, offset+length); throws an <see cref="ImageFormatException"/> when out of bounds.</summary>
    public ReadOnlySpan<byte> Span(long offset, long length, string what = "data")
    {
        if (!Contains(offset, length) || length > int.MaxValue)
            throw new ImageFormatException(Name, offset, $"{what} of 0x{length:x} bytes runs past the end of the file (size 0x{Length:x})");
        return Unchecked(offset, (int)length);
    }

    /// <summary>Like <see cref="Span"/> but returns false instead of throwing.</summary>
    public bool TrySpan(long offset, long length, out ReadOnlySpan<byte> span)
    {
        if (!Contains(offset, length) || length > int.MaxValue)
        {
            span = default;
            return false;
        }
        span = Unchecked(offset, (int)length);
        return true;
    }

    ReadOnlySpan<byte> Unchecked(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _bytes != null
            ? new ReadOnlySpan<byte>(_bytes, (int)offset, length)
            : new ReadOnlySpan<byte>(_pointer + offset, length);
    }

    public ushort U16(long offset) => MemoryMarshal.Read<ushort>(Span(offset, 2));
    public uint U32(long offset) => MemoryMarshal.Read<uint>(Span(offset, 4));
    public ulong U64(long offset) => MemoryMarshal.Read<ulong>(Span(offset, 8));

    /// <summary>Copies the whole file into a new array (for writers that patch a copy).</summary>
    public byte[] ToArray() => Span(0, Length).ToArray();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }
}
