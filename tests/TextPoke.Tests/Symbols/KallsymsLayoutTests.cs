using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Symbols;

/// <summary>Every kallsyms layout from v4.20 on, generated as scripts/kallsyms.c emits it, must decode exactly.</summary>
public class KallsymsLayoutTests
{
    [Theory]
    [InlineData("v4.20..v6.0", KallsymsOrder.OffsetsFirst, 0, true, false)]
    [InlineData("v6.1 (big names)", KallsymsOrder.OffsetsFirst, 0, true, true)]
    [InlineData("v6.2 (seqs_of_names as .long)", KallsymsOrder.OffsetsFirst, 4, true, true)]
    [InlineData("v6.3 and 6.1.y backports (3-byte seqs)", KallsymsOrder.OffsetsFirst, 3, true, true)]
    [InlineData("v6.4+ (offsets last)", KallsymsOrder.OffsetsLast, 3, true, true)]
    [InlineData("without absolute per-cpu", KallsymsOrder.OffsetsFirst, 0, false, false)]
    [InlineData("v6.4+ without absolute per-cpu", KallsymsOrder.OffsetsLast, 3, false, true)]
    public void Layout_DecodesEverySymbol(string era, KallsymsOrder order, int seqs, bool percpu, bool big)
    {
        var layout = new KallsymsMaker.Layout(order, seqs, percpu, big);
        var expected = KallsymsMaker.Symbols(layout, 1500);
        using var image = KernelImage.FromElfBytes(era, KallsymsMaker.BuildElf(layout, expected));
        var (found, symbols, reason) = Kallsyms.Recover(image);
        Assert.True(found != null, $"{era}: {reason}");
        Assert.Equal(order, found.Order);
        Assert.Equal(seqs, found.SeqsOfNamesEntrySize);
        Assert.Equal(percpu, found.AbsolutePercpu);
        Assert.Equal(expected.Count, symbols.Length);
        Assert.Equal(expected, symbols);
        if (big) Assert.Contains(symbols, s => s.Name.Length > 128);
    }

    /// <summary>
    /// Debian 6.1.0-53-cloud and 6.1.0-54-cloud: the last 3-byte seqs_of_names entry is 00 39 31 ("91"), printable and
    /// right before the token table, so walking back from the digit tokens takes "91" as the start of token 0. The token
    /// index that follows the table must decide where token 0 starts.
    /// </summary>
    [Fact]
    public void PrintableBytesBeforeTheTokenTable_AreNotPartOfTheFirstToken()
    {
        var layout = new KallsymsMaker.Layout(KallsymsOrder.OffsetsFirst, 3, false, true);
        var expected = KallsymsMaker.Symbols(layout, 14648, lastByName: 0x3931); // 3 * 14648 bytes of seqs: no padding after them
        var elf = KallsymsMaker.BuildElf(layout, expected);
        Assert.True(elf.AsSpan().IndexOf("\u000091__\u0000"u8) > 0, "the fixture must put 00 39 31 right before token 0 (\"__\")");
        using var image = KernelImage.FromElfBytes("seqs ending in 91", elf);
        var (found, symbols, reason) = Kallsyms.Recover(image);
        Assert.True(found != null, reason);
        Assert.Equal(expected, symbols);
    }

    [Fact]
    public void ImageWithoutKallsyms_SaysWhy()
    {
        using var image = KernelImage.Open(Fixtures.Build("jump-clean"));
        var (found, symbols, reason) = Kallsyms.Recover(image);
        Assert.Null(found);
        Assert.Empty(symbols);
        Assert.False(string.IsNullOrEmpty(reason));
    }
}
