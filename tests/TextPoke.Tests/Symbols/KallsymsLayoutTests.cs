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
