using System.Buffers.Binary;
using TextPoke.Boot;
using TextPoke.Crash;
using TextPoke.Messages;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Crash;

/// <summary>
/// v5.10's jump-label BUG as the kernel prints it ("... (%5ph) %d", the line number naming the failed expectation), from
/// a real boot that halted before its console: the report was read from the log buffer in guest memory.
/// </summary>
public class EarlyBugTests
{
    static readonly string Log = Path.Combine(Repo.Root, "tests", "data", "boot-logs", "debian-5.10.0-32-cloud-amd64-early-jump-label-bug.log");

    [Fact]
    public void OldUnexpectedOpLine_Parses_AndTheNewFormDoesNot()
    {
        const string line = "jump_label: Fatal kernel bug, unexpected op at cpu_cfs_stat_show+0x58/0xc0 [(____ptrval____)] (e9 0b 00 00 00) 45";
        var (site, bytes, number) = KernelMessages.ParseUnexpectedOpOld(line)!.Value;
        Assert.Equal("cpu_cfs_stat_show+0x58/0xc0", site.ToString());
        Assert.Equal("e9 0b 00 00 00", bytes);
        Assert.Equal(45, number);
        Assert.Null(KernelMessages.ParseUnexpectedOp(line));
        Assert.Null(KernelMessages.ParseUnexpectedOpOld(
            "jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [ffffffff] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 type:1"));
    }

    [Fact]
    public void HaltedBeforeTheConsole_TheLogBufferReport_IsDecodedAndExplained()
    {
        var reports = ConsoleLog.Parse(File.ReadAllLines(Log));
        var report = Assert.Single(reports);
        Assert.Equal("kernel BUG in __jump_label_set_jump_code", report.Title);
        Assert.True(JumpLabelExplainer.Applies(report));
        var explanation = JumpLabelExplainer.Explain(report, null, null)!;
        Assert.Equal("cpu_cfs_stat_show+0x58/0xc0", explanation.Location);
        Assert.Contains("expected the compiler's NOP 0f 1f 44 00 00 there (line 45); it found e9 0b 00 00 00", explanation.Lines[0]);
        Assert.Contains("before the console exists", explanation.Lines[0]);
        Assert.Equal("it happened in jump_label_init, called from setup_arch: the boot-time check of every site, not a key change.", explanation.Lines[1]);
    }

    /// <summary>
    /// The printk ring read through its descriptors: each committed or finalized record's exact text (text_len bytes
    /// after the block's id), in sequence order, a block that wraps read from the ring's start, a reserved record and a
    /// descriptor whose block was reused skipped — none of the next block's bytes leak into a line.
    /// </summary>
    [Fact]
    public void PrintkRing_RecordsByTheirDescriptors()
    {
        const int size = 64, count = 4;
        var data = new byte[size];
        var descs = new byte[count * TextPoke.Live.PrintkRingLayout.DescSize];
        var infos = new byte[count * TextPoke.Live.PrintkRingLayout.InfoSize];
        void Record(ulong id, ulong state, ulong begin, ulong next, ulong seq, string text, int at)
        {
            int i = (int)(id & (count - 1));
            BinaryPrimitives.WriteUInt64LittleEndian(descs.AsSpan(i * 24), state << 62 | id);
            BinaryPrimitives.WriteUInt64LittleEndian(descs.AsSpan(i * 24 + 8), begin);
            BinaryPrimitives.WriteUInt64LittleEndian(descs.AsSpan(i * 24 + 16), next);
            BinaryPrimitives.WriteUInt64LittleEndian(infos.AsSpan(i * 88), seq);
            BinaryPrimitives.WriteUInt16LittleEndian(infos.AsSpan(i * 88 + 16), (ushort)text.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(at), id);
            System.Text.Encoding.ASCII.GetBytes(text).CopyTo(data, at + 8);
        }
        // id 3 (index 3): the oldest, seq 6; its block wrapped (begin near the end of the first wrap, data from 0 of the
        // next), and id 5 has reused those bytes since.
        Record(3, 2, 60, size + 16, 6, "RIP: y", 0);
        // id 5 (index 1): finalized, at 0..24 of the second wrap, seq 7; its text ends where id 6's block begins.
        Record(5, 2, size + 0, size + 24, 7, "size:2 type:0", 0);
        // id 6 (index 2): committed, at 24..56, seq 8, with trailing bytes inside the block that are not text.
        Record(6, 1, size + 24, size + 56, 8, "kernel BUG at x.c:45!", 24);
        data[24 + 8 + 21] = (byte)':';
        // id 4 (index 0): reserved, not yet committed.
        Record(4, 0, size + 56, size + 64, 9, "", 56);
        Assert.Equal(["size:2 type:0", "kernel BUG at x.c:45!"], TextPoke.Live.PrintkRing.Lines(data, descs, infos, count));
        Assert.Empty(TextPoke.Live.PrintkRing.Lines(data.AsSpan(0, 48), descs, infos, count)); // not a power of two
    }

    [Fact]
    public void LogBufferLines_AreThePrintableRunsBetweenBinaryRecordHeaders()
    {
        // Two records: an 8-byte id, the text, then the next record's id at the next 8-byte boundary (0x20 is a space).
        byte[] ring = [0x10, 0, 0, 0, 0, 0, 0, 0, .. "kernel BUG at arch/x86/kernel/jump_label.c:27!!!"u8, 0x20, 0, 0, 0, 0, 0, 0, 0, .. "RIP: x"u8, 1, 2,
            .. "abc"u8, 0];
        Assert.Equal(["kernel BUG at arch/x86/kernel/jump_label.c:27!!!", "RIP: x"], BootRunner.LogBufferLines(ring));
        // A text whose last character falls on an aligned boundary, then padding and an id whose low byte is not text: kept whole.
        byte[] aligned = [0x10, 0, 0, 0, 0, 0, 0, 0, .. "ab unexpected op at f+0x1/0x2 (e9 0b 00 00 00) 45"u8, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0,
            .. "next"u8];
        Assert.Equal(["ab unexpected op at f+0x1/0x2 (e9 0b 00 00 00) 45", "next"], BootRunner.LogBufferLines(aligned));
        // A text that ends on the boundary, then an id whose two low bytes read ":0" (the rest 0xff), then the next text.
        byte[] id = [0x10, 0, 0, 0, 0, 0, 0, 0, .. "size:2 type:0 ok"u8, 0x3a, 0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, .. "next"u8, 0];
        Assert.Equal(["size:2 type:0 ok", "next"], BootRunner.LogBufferLines(id));
    }
}
