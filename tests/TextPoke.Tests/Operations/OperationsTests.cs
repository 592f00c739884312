using TextPoke.Boot;
using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Operations;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Operations;

/// <summary>The library entry points a second front end calls, tested without the command line.</summary>
public class OperationsTests
{
    static (KernelImage Image, ImageSymbols Symbols) Open(string fixture)
    {
        var image = KernelImage.Open(Fixtures.Build(fixture));
        return (image, ImageSymbols.Load(image, lookBeside: false));
    }

    [Theory]
    [InlineData("swap_writepage+0x1c", 0xffffffff8100001cUL)]
    [InlineData("swap_writepage+0x1c/0x60", 0xffffffff8100001cUL)]
    [InlineData("swap_writepage", 0xffffffff81000000UL)]
    [InlineData("0xffffffff81000010", 0xffffffff81000010UL)]
    [InlineData("ffffffff81000010", 0xffffffff81000010UL)]
    public void Locations_AsUsersWriteThem(string text, ulong expected)
    {
        var (image, symbols) = Open("jump-seed");
        using (image) Assert.Equal(expected, Locations.Resolve(image, symbols, text));
    }

    [Theory]
    [InlineData("no_such_function+0x4", "neither a symbol")]
    [InlineData("swap_writepage+0xzz", "bad offset")]
    [InlineData("0x1234", "neither a symbol")]
    public void Locations_ThatDoNotExist_AreRefused(string text, string message)
    {
        var (image, symbols) = Open("jump-seed");
        using (image) Assert.Contains(message, Assert.Throws<RequestException>(() => Locations.Resolve(image, symbols, text)).Message);
    }

    [Fact]
    public void Fix_RepairsTheSeedSite_AndTheRepairedCopyChecksClean()
    {
        var (image, symbols) = Open("jump-seed");
        using (image)
        {
            var fix = ImageEdits.Fix(image, symbols, null);
            var repair = Assert.Single(fix.SiteRepairs);
            Assert.Equal(0xffffffff8100001cUL, repair.Address);
            Assert.Equal([0xeb, 0x1c], repair.Before);
            Assert.Equal([0x66, 0x90], repair.After);
            Assert.NotNull(fix.Bytes);
            using var repaired = KernelImage.FromElfBytes("repaired", fix.Bytes!);
            Assert.True(CheckRunner.Run(repaired, ImageSymbols.Load(repaired, lookBeside: false)).Clean);
        }
        var (clean, cleanSymbols) = Open("jump-clean");
        using (clean)
        {
            var nothing = ImageEdits.Fix(clean, cleanSymbols, null);
            Assert.Empty(nothing.SiteRepairs);
            Assert.Null(nothing.Bytes);
        }
    }

    [Fact]
    public void Poke_FlipsAJumpSite_OrRefusesWhatCannotBePoked()
    {
        var (image, symbols) = Open("jump-seed");
        using (image)
        {
            var plan = ImageEdits.Plan(image, symbols, new PokeRequest(FlipKey: "frontswap_enabled_key"));
            Assert.Equal(0xffffffff8100001cUL, plan.Address);
            Assert.Equal([0xeb, 0x1c], plan.Before);
            Assert.Equal([0x66, 0x90], plan.After);
            Assert.Equal(".text", plan.Section.Name);
            Assert.Throws<RequestException>(() => ImageEdits.Plan(image, symbols, new PokeRequest()));
            Assert.Throws<RequestException>(() => ImageEdits.Plan(image, symbols, new PokeRequest(FlipKey: "frontswap_enabled_key", Index: 1)));
            Assert.Throws<RequestException>(() => ImageEdits.Plan(image, symbols, new PokeRequest(Location: "swap_writepage", Bytes: "zz")));
            Assert.Throws<RequestException>(() => ImageEdits.Plan(image, symbols, new PokeRequest(FlipSite: "swap_writepage+0x1")));
        }
    }

    [Fact]
    public void Scenario_EnablingTheSeedsKey_BugsAndNamesTheKey()
    {
        var (image, symbols) = Open("jump-seed");
        using (image)
        {
            using var run = JumpLabelScenario.Run(image, symbols,
                new ScenarioRequest(null, [new ScenarioStep("enable", "frontswap_enabled_key")], FlipAll: false, KeepGoing: false, AfterBoot: false));
            Assert.False(run.Clean);
            Assert.Equal("enable frontswap_enabled_key", run.Scenario);
            Assert.Contains(run.Core.Events, e => e.Kind == EventKind.Bug && e.Key == "frontswap_enabled_key");
        }
        var (clean, cleanSymbols) = Open("jump-clean");
        using (clean)
        {
            using var all = JumpLabelScenario.Run(clean, cleanSymbols, new ScenarioRequest(null, [], FlipAll: true, KeepGoing: false, AfterBoot: false));
            Assert.True(all.Clean);
            Assert.Equal("--flip-all", all.Scenario);
        }
    }

    [Fact]
    public void BootSession_RefusesABadRequest_BeforeStartingQemu()
    {
        string kernel = Fixtures.Build("jump-clean");
        Assert.Throws<ImageFormatException>(() => BootSession.Prepare(new BootSessionRequest(kernel)));
        var bz = Path.Combine(Repo.Scratch("session"), "bzImage");
        File.WriteAllBytes(bz, BzImageMaker.Make(BzImageMaker.Payload("gzip", File.ReadAllBytes(kernel))));
        Assert.Contains("--repeat", Assert.Throws<RequestException>(() => BootSession.Prepare(new BootSessionRequest(bz, Repeat: 0))).Message);
        Assert.Contains("--timeout", Assert.Throws<RequestException>(() => BootSession.Prepare(new BootSessionRequest(bz, TimeoutSeconds: 0))).Message);
        Assert.Throws<ImageFormatException>(() => BootSession.Prepare(new BootSessionRequest(bz, Initrd: Path.Combine(Repo.Scratch("session"), "none"))));
    }
}
