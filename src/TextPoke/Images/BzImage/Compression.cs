using System.IO.Compression;
using System.Runtime.InteropServices;

namespace TextPoke.Images.BzImage;

/// <summary>The compression formats a kernel payload or a module can use (magics from scripts/Makefile.lib and extract-vmlinux).</summary>
public enum CompressionFormat { None, Gzip, Bzip2, Lzma, Xz, Lzo, Lz4Legacy, Zstd }

/// <summary>Detects and undoes the compression of kernel payloads and modules.</summary>
public static class Compression
{
    /// <summary>
    /// Upper bound on any decompressed output (1 GiB: a distro kernel's payload is about 70 MB, a module with its debug
    /// information rarely more than 100 MB), so a decompression bomb ends with one line instead of exhausting memory.
    /// </summary>
    public const long MaxOutput = 1L << 30;

    /// <summary>
    /// How much output to allocate before any is produced: the size word, but never more than the input could plausibly
    /// expand to (16× plus 1 MiB; real kernels compress 3-10×). The buffer grows as bytes actually come, so a few
    /// hostile bytes that claim a gigabyte allocate a megabyte.
    /// </summary>
    internal static long InitialCapacity(long sizeHint, int inputLength) =>
        Math.Min(sizeHint > 0 ? sizeHint : MaxOutput, (1L << 20) + inputLength * 16L);

    /// <summary>The most output a stream may produce: its size word when it has one, else <see cref="MaxOutput"/>.</summary>
    internal static long Limit(long sizeHint) => sizeHint > 0 ? Math.Min(sizeHint, MaxOutput) : MaxOutput;

    internal static InvalidDataException TooMuch(long sizeHint) => new(sizeHint > 0
        ? $"decompresses to more than the size word's {sizeHint} bytes" : $"decompresses to more than textpoke accepts ({MaxOutput} bytes)");

    public static CompressionFormat Detect(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b, 0x08])) return CompressionFormat.Gzip;
        if (head.StartsWith((ReadOnlySpan<byte>)[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return CompressionFormat.Xz;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd])) return CompressionFormat.Zstd;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x02, 0x21, 0x4c, 0x18])) return CompressionFormat.Lz4Legacy;
        if (head.StartsWith("BZh"u8) && head.Length > 3 && head[3] >= (byte)'1' && head[3] <= (byte)'9') return CompressionFormat.Bzip2;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x89, 0x4c, 0x5a, 0x4f])) return CompressionFormat.Lzo;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x5d, 0x00, 0x00])) return CompressionFormat.Lzma;
        return CompressionFormat.None;
    }

    public static string Name(CompressionFormat format) => format switch
    {
        CompressionFormat.Gzip => "gzip", CompressionFormat.Bzip2 => "bzip2", CompressionFormat.Lzma => "lzma",
        CompressionFormat.Xz => "xz", CompressionFormat.Lzo => "lzo", CompressionFormat.Lz4Legacy => "lz4 (legacy frame)",
        CompressionFormat.Zstd => "zstd", _ => "none",
    };

    /// <summary>
    /// Decompresses one stream. <paramref name="sizeHint"/> is the expected output size (the payload's size word), or -1.
    /// Throws <see cref="InvalidDataException"/> with a short reason on corrupt input.
    /// </summary>
    public static unsafe byte[] Decompress(CompressionFormat format, ReadOnlySpan<byte> input, long sizeHint)
    {
        if (sizeHint > MaxOutput) throw new InvalidDataException($"claims {sizeHint} bytes uncompressed, more than textpoke accepts");
        try
        {
            return DecompressUnchecked(format, input, sizeHint);
        }
        catch (Exception e) when (e is not (InvalidDataException or OutOfMemoryException))
        {
            // Third-party decoders throw their own types on hostile input; to the caller it is all corrupt data.
            throw new InvalidDataException($"corrupt stream ({e.Message.TrimEnd('.')})");
        }
    }

    static unsafe byte[] DecompressUnchecked(CompressionFormat format, ReadOnlySpan<byte> input, long sizeHint)
    {
        fixed (byte* p = input)
        {
            using var stream = new UnmanagedMemoryStream(p, input.Length);
            return format switch
            {
                CompressionFormat.Gzip => ReadAll(new GZipStream(stream, CompressionMode.Decompress), sizeHint, input.Length),
                CompressionFormat.Bzip2 => ReadAll(SharpCompress.Compressors.BZip2.BZip2Stream.Create(stream,
                    SharpCompress.Compressors.CompressionMode.Decompress, false, false, false), sizeHint, input.Length),
                CompressionFormat.Xz => LibLzma.Decode(input, sizeHint, alone: false),
                CompressionFormat.Lzma => LibLzma.Decode(input, sizeHint, alone: true),
                CompressionFormat.Zstd => Zstd(input, stream, sizeHint),
                CompressionFormat.Lz4Legacy => Lz4Legacy(input, sizeHint),
                CompressionFormat.Lzo =>
                    throw new InvalidDataException("LZO-compressed payloads are not supported (no LZO decoder is available); recompress the kernel or " +
                    "extract it with scripts/extract-vmlinux"),
                _ => throw new InvalidDataException("unknown compression"),
            };
        }
    }

    static byte[] ReadAll(Stream decoder, long sizeHint, int inputLength)
    {
        using (decoder)
        {
            var output = new MemoryStream((int)InitialCapacity(sizeHint, inputLength));
            var buffer = new byte[1 << 20];
            try
            {
                int n;
                while ((n = decoder.Read(buffer, 0, buffer.Length)) > 0)
                {
                    output.Write(buffer, 0, n);
                    if (output.Length > Limit(sizeHint)) throw TooMuch(sizeHint);
                }
            }
            catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
            {
                throw new InvalidDataException($"corrupt stream ({e.Message.TrimEnd('.')})");
            }
            if (output.Length == 0) throw new InvalidDataException("decompresses to nothing");
            return output.Length == output.Capacity ? output.GetBuffer() : output.ToArray();
        }
    }

    static byte[] Zstd(ReadOnlySpan<byte> input, Stream stream, long sizeHint)
    {
        byte[] output;
        if (sizeHint > 0 && InitialCapacity(sizeHint, input.Length) == sizeHint)
        {
            // A plausible size word (no more than the input can expand to): one pass straight into a buffer of exactly
            // that size, which a stream expanding beyond it cannot overrun (ZstdSharp refuses). A quarter faster than
            // streaming on a distro kernel.
            output = new byte[sizeHint];
            using var decompressor = new ZstdSharp.Decompressor();
            int written;
            try { written = decompressor.Unwrap(input, output); }
            catch (ZstdSharp.ZstdException e) when (e.Code == ZstdSharp.Unsafe.ZSTD_ErrorCode.ZSTD_error_dstSize_tooSmall) { throw TooMuch(sizeHint); }
            catch (ZstdSharp.ZstdException e) { throw new InvalidDataException($"corrupt zstd stream ({e.Message.TrimEnd('.')})"); }
            return written == sizeHint ? output : Mismatch(written, sizeHint);
        }
        // No size word, or one claiming more than the input can hold: streamed, the buffer grown as bytes come.
        output = ReadAll(new ZstdSharp.DecompressionStream(stream), sizeHint, input.Length);
        return sizeHint > 0 && output.Length != sizeHint ? Mismatch(output.Length, sizeHint) : output;
    }

    static byte[] Mismatch(long produced, long sizeHint) =>
        throw new InvalidDataException($"decompressed to {produced} bytes, the size word says {sizeHint}");

    // lib/decompress_unlz4.c: magic 0x184c2102, then blocks of (u32 compressed size, LZ4 block), each at most 8 MiB out.
    const uint Lz4LegacyMagic = 0x184c2102;
    const int Lz4LegacyBlock = 8 << 20;

    static byte[] Lz4Legacy(ReadOnlySpan<byte> input, long sizeHint)
    {
        var output = new byte[Math.Max(InitialCapacity(sizeHint, input.Length), Math.Min(Limit(sizeHint), Lz4LegacyBlock))];
        long outAt = 0;
        int at = 4;
        while (at + 4 <= input.Length)
        {
            uint chunk = BitConverter.ToUInt32(input.Slice(at, 4));
            if (chunk == Lz4LegacyMagic) { at += 4; continue; } // concatenated streams
            at += 4;
            if (chunk == 0 || chunk > input.Length - at) break; // trailing size word or end
            if (output.Length - outAt < Lz4LegacyBlock && output.Length < Limit(sizeHint))
                Array.Resize(ref output, (int)Math.Min(Limit(sizeHint), Math.Max(output.Length * 2L, outAt + Lz4LegacyBlock)));
            int room = (int)Math.Min(Lz4LegacyBlock, output.Length - outAt);
            if (room == 0) throw TooMuch(sizeHint);
            int n = K4os.Compression.LZ4.LZ4Codec.Decode(input.Slice(at, (int)chunk), output.AsSpan((int)outAt, room));
            if (n < 0) throw new InvalidDataException($"corrupt lz4 block at input offset 0x{at:x}");
            outAt += n;
            at += (int)chunk;
        }
        if (outAt == 0) throw new InvalidDataException("lz4 stream holds no data");
        if (sizeHint > 0 && outAt != sizeHint) throw new InvalidDataException($"decompressed to {outAt} bytes, the size word says {sizeHint}");
        if (outAt != output.Length) Array.Resize(ref output, (int)outAt);
        return output;
    }
}

/// <summary>liblzma through P/Invoke: the kernel's xz payload uses the x86 BCJ filter, which managed decoders do not undo.</summary>
static unsafe partial class LibLzma
{
    const string Library = "liblzma.so.5";
    const int LZMA_OK = 0, LZMA_STREAM_END = 1, LZMA_RUN = 0;

    // lzma_stream (lzma/base.h): next_in, avail_in, total_in, next_out, avail_out, total_out, then private and reserved
    // fields. LZMA_STREAM_INIT is all zeroes, so a zeroed block larger than the struct is a valid initial value.
    const int StreamBytes = 256;

    [LibraryImport(Library)] private static partial int lzma_stream_decoder(byte* strm, ulong memlimit, uint flags);
    [LibraryImport(Library)] private static partial int lzma_alone_decoder(byte* strm, ulong memlimit);
    [LibraryImport(Library)] private static partial int lzma_code(byte* strm, int action);
    [LibraryImport(Library)] private static partial void lzma_end(byte* strm);

    static string Error(int code) => code switch
    {
        5 => "out of memory", 6 => "memory limit reached", 7 => "not an xz/lzma stream", 8 => "unsupported options",
        9 => "corrupt data", 10 => "input ends before the stream does", _ => $"liblzma error {code}",
    };

    public static byte[] Decode(ReadOnlySpan<byte> input, long sizeHint, bool alone)
    {
        byte* strm = stackalloc byte[StreamBytes];
        new Span<byte>(strm, StreamBytes).Clear();
        int rc;
        try
        {
            rc = alone ? lzma_alone_decoder(strm, ulong.MaxValue) : lzma_stream_decoder(strm, ulong.MaxValue, 0);
        }
        catch (DllNotFoundException)
        {
            throw new InvalidDataException("liblzma.so.5 is not installed (Debian package liblzma5)");
        }
        if (rc != LZMA_OK) throw new InvalidDataException(Error(rc));
        try
        {
            var output = new byte[Compression.InitialCapacity(sizeHint, input.Length)];
            fixed (byte* inp = input)
            {
                *(byte**)(strm + 0) = inp;
                *(nuint*)(strm + 8) = (nuint)input.Length;
                long produced = 0;
                byte* scratch = stackalloc byte[16];
                while (true)
                {
                    nuint inBefore = *(nuint*)(strm + 8);
                    long outBefore = produced;
                    fixed (byte* outp = output)
                    {
                        *(byte**)(strm + 24) = outp + produced;
                        *(nuint*)(strm + 32) = (nuint)(output.Length - produced);
                        rc = lzma_code(strm, LZMA_RUN);
                        produced = output.Length - (long)*(nuint*)(strm + 32);
                    }
                    if (rc == LZMA_STREAM_END) break;
                    if (rc != LZMA_OK) throw new InvalidDataException(Error(rc));
                    if (produced == output.Length && sizeHint > 0 && output.Length == sizeHint)
                    {
                        // Exactly full: let liblzma read the stream footer into a scratch buffer, which must stay empty.
                        do
                        {
                            inBefore = *(nuint*)(strm + 8);
                            *(byte**)(strm + 24) = scratch;
                            *(nuint*)(strm + 32) = 16;
                            rc = lzma_code(strm, LZMA_RUN);
                            if (*(nuint*)(strm + 32) != 16) throw new InvalidDataException($"decompresses to more than the size word's {sizeHint} bytes");
                        } while (rc == LZMA_OK && *(nuint*)(strm + 8) != inBefore);
                        if (rc == LZMA_STREAM_END) break;
                        throw new InvalidDataException(Error(rc == LZMA_OK ? 10 : rc));
                    }
                    if (produced == output.Length)
                    {
                        if (output.Length >= Compression.Limit(sizeHint)) throw Compression.TooMuch(sizeHint);
                        Array.Resize(ref output, (int)Math.Min(Compression.Limit(sizeHint), output.Length * 2L));
                    }
                    else if (produced == outBefore && *(nuint*)(strm + 8) == inBefore)
                        throw new InvalidDataException(Error(10));
                }
                if (sizeHint > 0 && produced != sizeHint) throw new InvalidDataException($"decompressed to {produced} bytes, the size word says {sizeHint}");
                if (produced != output.Length) Array.Resize(ref output, (int)produced);
                return output;
            }
        }
        finally
        {
            lzma_end(strm);
        }
    }
}
