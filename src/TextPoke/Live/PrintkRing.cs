using System.Buffers.Binary;
using System.Text;

namespace TextPoke.Live;

/// <summary>
/// Where the static printk ring lives in a kernel (v5.10+, kernel/printk/printk.c _DEFINE_PRINTKRB(printk_rb_static)):
/// the text data ring __log_buf, and the descriptor and info arrays _printk_rb_static_descs/_infos beside it.
/// </summary>
public sealed record PrintkRingLayout(ulong Data, ulong DataLength, ulong Descs, int Count, ulong Infos)
{
    /// <summary>struct prb_desc: atomic_long_t state_var; struct prb_data_blk_lpos { unsigned long begin, next; }.</summary>
    public const int DescSize = 24;
    /// <summary>struct printk_info: u64 seq, ts_nsec; u16 text_len; u8 facility, flags:5/level:3; u32 caller_id; dev_printk_info (16 + 48).</summary>
    public const int InfoSize = 88;
}

/// <summary>
/// Reads the records of the printk ring (kernel/printk/printk_ringbuffer.[ch]) from memory: every descriptor committed or
/// finalized (state in the top two bits of state_var, its id in the rest, at index id &amp; (count - 1)) gives the data
/// block [begin, next) of the text ring — wrapped to the ring's start when begin and next are in different wraps — whose
/// first 8 bytes are the block's id and whose text is the info's text_len bytes after it. Records come out in sequence
/// order, one line per line of text.
/// </summary>
public static class PrintkRing
{
    const int StateShift = 62;
    const ulong IdMask = (1UL << StateShift) - 1;

    public static List<string> Lines(ReadOnlySpan<byte> data, ReadOnlySpan<byte> descs, ReadOnlySpan<byte> infos, int count)
    {
        var records = new List<(ulong Seq, string Text)>();
        int size = data.Length;
        if (size == 0 || (size & (size - 1)) != 0 || count <= 0 || (count & (count - 1)) != 0
            || descs.Length < count * PrintkRingLayout.DescSize || infos.Length < count * PrintkRingLayout.InfoSize)
            return [];
        int sizeBits = System.Numerics.BitOperations.Log2((uint)size);
        for (int i = 0; i < count; i++)
        {
            var desc = descs.Slice(i * PrintkRingLayout.DescSize, PrintkRingLayout.DescSize);
            ulong state = BinaryPrimitives.ReadUInt64LittleEndian(desc);
            ulong id = state & IdMask;
            if ((state >> StateShift) is not (1 or 2) || (id & (ulong)(count - 1)) != (ulong)i) continue; // committed or finalized
            ulong begin = BinaryPrimitives.ReadUInt64LittleEndian(desc[8..]), next = BinaryPrimitives.ReadUInt64LittleEndian(desc[16..]);
            var info = infos.Slice(i * PrintkRingLayout.InfoSize, PrintkRingLayout.InfoSize);
            ulong seq = BinaryPrimitives.ReadUInt64LittleEndian(info);
            int textLength = BinaryPrimitives.ReadUInt16LittleEndian(info[16..]);
            if ((begin & 1) != 0) { if (textLength == 0) records.Add((seq, "")); continue; } // FAILED_LPOS / EMPTY_LINE_LPOS
            int at;
            ulong length;
            if (begin >> sizeBits == next >> sizeBits) { at = (int)(begin & (ulong)(size - 1)); length = next - begin; }
            else if ((begin + (ulong)size) >> sizeBits == next >> sizeBits) { at = 0; length = next & (ulong)(size - 1); }
            else continue;
            if (length < 8 || (ulong)at + length > (ulong)size || (ulong)textLength > length - 8) continue;
            if (BinaryPrimitives.ReadUInt64LittleEndian(data[at..]) != id) continue; // the block was reused
            records.Add((seq, Text(data.Slice(at + 8, textLength))));
        }
        return records.OrderBy(r => r.Seq).SelectMany(r => r.Text.Split('\n')).ToList();
    }

    // Printable ASCII as it is; anything else as '?' (the lines go into a log that decode reads).
    static string Text(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(b is >= 0x20 and < 0x7f or (byte)'\t' or (byte)'\n' ? (char)b : '?');
        return sb.ToString();
    }
}
