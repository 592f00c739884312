using System.Buffers.Binary;
using System.Text;

namespace TextPoke.Dwarf;

/// <summary>Malformed DWARF: the reader stops at the broken unit and says where.</summary>
public sealed class DwarfFormatException(string message) : Exception(message);

/// <summary>A bounds-checked little-endian reader over one DWARF section (LEB128, strings, 32/64-bit offsets).</summary>
ref struct DwarfCursor
{
    readonly ReadOnlySpan<byte> _data;
    public int Position;

    public DwarfCursor(ReadOnlySpan<byte> data, int position = 0)
    {
        if (position < 0 || position > data.Length) throw new DwarfFormatException($"offset 0x{position:x} is outside its section (0x{data.Length:x} bytes)");
        _data = data;
        Position = position;
    }

    public readonly int Length => _data.Length;
    public readonly bool AtEnd => Position >= _data.Length;

    ReadOnlySpan<byte> Take(int n)
    {
        // Position is set by callers from offsets in the data: a hostile one may be negative or past the end.
        if (n < 0 || Position < 0 || Position > _data.Length - n)
            throw new DwarfFormatException($"read of {n} bytes at 0x{Position:x} runs past the end (0x{_data.Length:x})");
        var s = _data.Slice(Position, n);
        Position += n;
        return s;
    }

    public byte U8() => Take(1)[0];
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));
    public ulong U24() { var s = Take(3); return (ulong)(s[0] | s[1] << 8 | s[2] << 16); }
    public void Skip(long n)
    {
        if (n < 0 || Position < 0 || n > _data.Length - Position) throw new DwarfFormatException($"skip of {n} bytes at 0x{Position:x} runs past the end");
        Position += (int)n;
    }

    public ulong Uleb()
    {
        ulong result = 0;
        int shift = 0;
        while (true)
        {
            byte b = U8();
            if (shift < 64) result |= (ulong)(b & 0x7f) << shift;
            shift += 7;
            if ((b & 0x80) == 0) return result;
        }
    }

    public long Sleb()
    {
        long result = 0;
        int shift = 0;
        byte b;
        do
        {
            b = U8();
            if (shift < 64) result |= (long)(b & 0x7f) << shift;
            shift += 7;
        } while ((b & 0x80) != 0);
        if (shift < 64 && (b & 0x40) != 0) result |= -1L << shift;
        return result;
    }

    /// <summary>An unsigned value of the given size (1, 2, 4 or 8 bytes).</summary>
    public ulong Sized(int size) => size switch { 1 => U8(), 2 => U16(), 4 => U32(), 8 => U64(), _ =>
        throw new DwarfFormatException($"unsupported size {size}") };

    /// <summary>A section offset: 4 bytes in 32-bit DWARF, 8 in 64-bit DWARF.</summary>
    public ulong Offset(bool dwarf64) => dwarf64 ? U64() : U32();

    /// <summary>A unit length; sets dwarf64 from the 0xffffffff escape.</summary>
    public ulong UnitLength(out bool dwarf64)
    {
        uint first = U32();
        dwarf64 = first == 0xffffffff;
        if (dwarf64) return U64();
        if (first >= 0xfffffff0) throw new DwarfFormatException($"reserved unit length 0x{first:x} at 0x{Position - 4:x}");
        return first;
    }

    public string CString()
    {
        int end = _data[Position..].IndexOf((byte)0);
        if (end < 0) throw new DwarfFormatException($"unterminated string at 0x{Position:x}");
        var s = Encoding.UTF8.GetString(_data.Slice(Position, end));
        Position += end + 1;
        return s;
    }

    /// <summary>The NUL-terminated string at an offset of this section.</summary>
    public static string StringAt(ReadOnlySpan<byte> section, ulong offset)
    {
        if (offset >= (ulong)section.Length) throw new DwarfFormatException($"string offset 0x{offset:x} past the end of its section");
        var rest = section[(int)offset..];
        int end = rest.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? rest : rest[..end]);
    }
}
