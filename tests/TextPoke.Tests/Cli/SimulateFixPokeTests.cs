using System.Text.Json;
using TextPoke.Checks;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Images.Elf;
using TextPoke.Symbols;
using TextPoke.Tests.Support;

namespace TextPoke.Tests.Cli;

public class SimulateFixPokeTests
{
    static string Copy(string fixture)
    {
        var path = Path.Combine(Repo.Scratch("in"), fixture + ".elf");
        File.Copy(Fixtures.Build(fixture), path);
        return path;
    }

    [Fact]
    public void Simulate_Seed_PrintsTheKernelsLinesAndTheCallPath()
    {
        var r = CliRun.Run("simulate", Fixtures.Build("jump-seed"), "--enable", "frontswap_enabled_key");
        Assert.Equal(1, r.Exit);
        int at = Array.IndexOf(r.Lines, "> static_key_enable(&frontswap_enabled_key)");
        Assert.True(at > 0, r.Out);
        Assert.Equal(
        [
            "jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [ffffffff8100001c] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 type:1",
            "------------[ cut here ]------------",
            "kernel BUG at arch/x86/kernel/jump_label.c:73!",
            "emulated call path (outermost first):",
            "  static_key_enable(&frontswap_enabled_key)",
            "  static_key_enable_cpuslocked",
            "  jump_label_update",
            "  __jump_label_update",
            "  arch_jump_label_transform_queue",
            "  __jump_label_patch   site swap_writepage+0x1c/0x60, key frontswap_enabled_key",
        ], r.Lines[(at + 1)..(at + 11)]);
        Assert.Contains("result: 1 BUG, 0 WARNINGs; the emulated kernel stopped at the first BUG, as the real one does (--keep-going to continue)", r.Lines);
    }

    [Fact]
    public void Simulate_CleanImage_FlipAllByDefault_Exits0()
    {
        var r = CliRun.Run("simulate", Fixtures.Build("jump-clean"));
        Assert.Equal(0, r.Exit);
        Assert.Contains("scenario --flip-all", r.Lines);
        Assert.Contains("result: no BUG and no WARNING: every site switched as the kernel expects", r.Lines);
    }

    [Fact]
    public void Simulate_Script_AndJson()
    {
        var script = Path.Combine(Repo.Scratch("script"), "ops");
        File.WriteAllText(script, "# two users, then one too many\ninc frontswap_enabled_key\ninc frontswap_enabled_key\ndisable frontswap_enabled_key\n");
        var r = CliRun.Run("simulate", Fixtures.Build("jump-clean"), "--script", script, "--json");
        Assert.Equal(1, r.Exit);
        using var doc = JsonDocument.Parse(r.Out);
        Assert.Equal(1, doc.RootElement.GetProperty("warnings").GetInt32());
        var warning = doc.RootElement.GetProperty("events").EnumerateArray().Single(e => e.GetProperty("kind").GetString() == "warning");
        Assert.Equal("static_key_disable(&frontswap_enabled_key)", warning.GetProperty("operation").GetString());
        var bad = Path.Combine(Repo.Scratch("script"), "bad");
        File.WriteAllText(bad, "enable no_such_key\n");
        var e2 = CliRun.Run("simulate", Fixtures.Build("jump-clean"), "--script", bad);
        Assert.Equal(2, e2.Exit);
        Assert.Contains("line 1: no static key named 'no_such_key'", e2.Err);
    }

    [Fact]
    public void KeyUsers_FindTheFunctionThatFlipsTheKey_AndItsInitCaller()
    {
        using var image = KernelImage.Open(Fixtures.Build("jump-socks"));
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        Assert.True(symbols.TryFind("memalloc_socks_key", out ulong key, out _));
        var user = Assert.Single(KeyUsers.Find(image, symbols, [key])[key]);
        Assert.Equal("sk_enable_memalloc", user.Function);
        Assert.Equal("static_key_slow_inc", user.Operation);
        Assert.True(user.Flips);
        Assert.Equal("net_init", Assert.Single(user.Callers).Function);
        Assert.True(user.RunsAtBoot);
    }

    /// <summary>
    /// Whether the code that changes a key runs at boot follows the kernel's paths beyond direct calls: a static work item
    /// queued from init text, a pernet init or a notifier registered from init text, a tail call; a handler nothing calls runs on demand,
    /// and a path through a function called from many places (none of them init) is not taken. Each key of an array is
    /// changed by the code that indexes the array.
    /// </summary>
    [Fact]
    public void KeyUsers_BootPath_ThroughQueuedWork_PernetInit_TailCalls()
    {
        using var image = KernelImage.Open(Fixtures.Build("jump-keyusers"));
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        ulong Key(string name) => symbols.TryFind(name, out ulong a, out _) ? a : throw new InvalidOperationException(name);
        ulong hooks = Key("hooks");
        var keys = new[] { Key("work_key"), Key("pernet_key"), Key("tail_key"), Key("knob_key"), Key("busy_key"), hooks, hooks + 16, hooks + 32 };
        var users = KeyUsers.Find(image, symbols, keys);
        KeyUser Single(string name) => Assert.Single(users[Key(name)]);

        var work = Single("work_key");
        Assert.Equal(["work_fn", "work queued by kick_work", "called by subsys_init (init text)"], work.BootPath);
        Assert.Equal(["pernet_init_fn", "pernet init registered by subsys_init (init text)"], Single("pernet_key").BootPath);
        Assert.Equal(["notif_fn", "notifier registered by subsys_init (init text)"],
            Assert.Single(KeyUsers.Find(image, symbols, [Key("notif_key")])[Key("notif_key")]).BootPath);
        var tail = Single("tail_key");
        Assert.Equal("static_key_enable", tail.Operation);
        Assert.Equal(["subsys_init (init text)"], tail.BootPath);
        var knob = Single("knob_key");
        Assert.True(knob.Flips);
        Assert.False(knob.RunsAtBoot);
        Assert.Null(Single("busy_key").BootPath);
        foreach (ulong element in new[] { hooks, hooks + 16, hooks + 32 })
        {
            var user = Assert.Single(users[element]);
            Assert.Equal(("hook_register", "static_key_slow_inc"), (user.Function, user.Operation));
            Assert.Equal(["hook_register", "called by subsys_init (init text)"], user.BootPath);
            // Asked about alone (simulate asks about the one key that BUGged), an element still has its user.
            Assert.Equal("hook_register", Assert.Single(KeyUsers.Find(image, symbols, [element])[element]).Function);
        }

        // Keys kept in data: handed on through the hook lists, slot by slot.
        var held = KeyUsers.Find(image, symbols, [Key("slot_key_0"), Key("slot_key_1"), Key("slot_key_2")]);
        foreach (var slot in new[] { "slot_key_0", "slot_key_1" })
        {
            var list = held[Key(slot)].OrderBy(u => u.Function, StringComparer.Ordinal).ToList();
            Assert.Equal(["lsm_b_init", "subsys_init"], list.Select(u => u.Function));
            Assert.Equal([("add_hooks", "lsm_b_hooks"), ("add_hooks", "lsm_a_hooks")], list.Select(u => (u.Operation, u.Through)));
            Assert.All(list, u => Assert.True(u.Flips));
            Assert.Null(list[0].BootPath);
            Assert.Equal(["subsys_init (init text)"], list[1].BootPath);
        }
        Assert.Empty(held[Key("slot_key_2")]);
    }

    /// <summary>A key inside an array of keys is named as printed (hooks+0x20) or as C's element (hooks[2]), by poke and simulate alike.</summary>
    [Fact]
    public void ArrayElementKeys_NamedByIndex()
    {
        var elf = Fixtures.Build("jump-keyusers");
        var output = Path.Combine(Repo.Scratch("array-keys"), "poked.elf");
        var poke = CliRun.Run("poke", elf, "--flip-jump-key", "hooks[2]", "-o", output);
        Assert.True(poke.Exit == 0, poke.Out + poke.Err);
        Assert.Contains("(key hooks+0x20)", poke.Out);
        Assert.Contains("uses_sites+0x23/", CliRun.Run("check", output).Out);
        Assert.Equal(0, CliRun.Run("simulate", elf, "--enable", "hooks[1]").Exit);
        Assert.Contains("scenario enable hooks[0]", CliRun.Run("simulate", elf, "--enable", "hooks[0]").Out);
        var missing = CliRun.Run("simulate", elf, "--enable", "hooks[3]");
        Assert.Equal(2, missing.Exit);
        Assert.Contains("no static key named 'hooks[3]' in the image's jump table; hooks is an array of keys (3 with sites, e.g. hooks, hooks+0x10, " +
            "hooks+0x20): name one as hooks[N]", missing.Err);
        var notFlipped = CliRun.Run("poke", elf, "--flip-jump-key", "hooks[7]", "-o", output);
        Assert.Equal(2, notFlipped.Exit);
        Assert.Contains("hooks is an array of keys", notFlipped.Err);
    }

    [Fact]
    public void Fix_Seed_WritesARepairedCopy_AndLeavesTheInputAlone()
    {
        var input = Copy("jump-seed");
        var hash = Repo.Sha256(input);
        var output = Path.Combine(Repo.Scratch("fix"), "fixed.elf");
        var r = CliRun.Run("fix", input, "-o", output);
        Assert.Equal(0, r.Exit);
        Assert.Contains("fixed    swap_writepage+0x1c/0x60 [ffffffff8100001c]: eb 1c -> 66 90 (NOP: key frontswap_enabled_key is initially off and the site " +
            "is static_branch_unlikely)", r.Lines);
        Assert.Equal(hash, Repo.Sha256(input));
        Assert.Equal(0, CliRun.Run("check", output).Exit);
        var a = File.ReadAllBytes(input);
        var b = File.ReadAllBytes(output);
        Assert.Equal(2, a.Zip(b).Count(p => p.First != p.Second));
    }

    [Fact]
    public void Fix_RefusesWhatItCannotRepair_AndWritesNothing()
    {
        var input = Copy("jump-neither");
        var output = Path.Combine(Repo.Scratch("fix"), "out.elf");
        var r = CliRun.Run("fix", input, "-o", output);
        Assert.Equal(1, r.Exit);
        Assert.Equal(2, r.Lines.Count(l => l.StartsWith("refused  ")));
        Assert.Contains("nothing that can be repaired; nothing written", r.Lines);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Fix_RelocatableObject_NeutralisesTheLiveRelocation()
    {
        var input = Copy("jump-livereloc");
        var output = Path.Combine(Repo.Scratch("fix"), "fixed.o");
        var r = CliRun.Run("fix", input, "-o", output);
        Assert.Equal(0, r.Exit);
        Assert.Contains(r.Lines, l => l.Contains("bytes unchanged") && l.Contains("R_X86_64_PC32 against g at +1 set to R_X86_64_NONE"));
        using var image = KernelImage.Open(output);
        var text = image.Elf.Section(".text")!;
        var types = new List<uint>();
        foreach (var rela in image.Elf.RelocationSectionsFor(text))
            foreach (var rel in image.Elf.Relocations(rela)) types.Add(rel.Type);
        Assert.Equal([ElfConstants.R_X86_64_NONE], types);
        Assert.Equal(0, CliRun.Run("check", output).Exit);
    }

    [Fact]
    public void Fix_NeedsAnOutput_AndNeverWritesOverTheInputByAccident()
    {
        var input = Copy("jump-seed");
        Assert.Equal(2, CliRun.Run("fix", input).Exit);
        Assert.Equal(2, CliRun.Run("fix", input, "-o", input).Exit);
        var hash = Repo.Sha256(input);
        Assert.Equal(hash, Repo.Sha256(input));
        Assert.Equal(0, CliRun.Run("fix", input, "--in-place").Exit);
        Assert.NotEqual(hash, Repo.Sha256(input));
        Assert.Equal(0, CliRun.Run("check", input).Exit);
    }

    [Fact]
    public void Poke_RawBytes_FlipSite_FlipKey()
    {
        var input = Copy("jump-clean");
        var hash = Repo.Sha256(input);
        var dir = Repo.Scratch("poke");
        var raw = CliRun.Run("poke", input, "swap_writepage+0x1", "eb 19", "-o", Path.Combine(dir, "raw.elf"));
        Assert.Equal(0, raw.Exit);
        Assert.Contains("poked    swap_writepage+0x1/0x23 [ffffffff81000001] in .text: 66 90 -> eb 19 (bytes written)", raw.Lines);
        var site = CliRun.Run("poke", input, "--flip-jump-site", "0xffffffff81000001", "-o", Path.Combine(dir, "site.elf"));
        Assert.Equal(0, site.Exit);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "raw.elf")), File.ReadAllBytes(Path.Combine(dir, "site.elf")));
        var key = CliRun.Run("poke", input, "--flip-jump-key", "on_key", "--index", "0", "-o", Path.Combine(dir, "key.elf"));
        Assert.Contains("JMP turned into a NOP (key on_key)", key.Out);
        var check = CliRun.Run("check", Path.Combine(dir, "key.elf"));
        Assert.Equal(1, check.Exit);
        Assert.Contains(check.Lines, l => l.EndsWith("size:5 type:0"));
        Assert.Equal(hash, Repo.Sha256(input));
    }

    [Fact]
    public void Poke_RefusesLocationsOutsideCodeAndData_AndBadArguments()
    {
        var input = Copy("jump-clean");
        var o = Path.Combine(Repo.Scratch("poke"), "x.elf");
        Assert.Contains("outside the image's code and data", CliRun.Run("poke", input, "frontswap_enabled_key", "00", "-o", o).Err);
        Assert.Equal(2, CliRun.Run("poke", input, "nowhere+0x4", "00", "-o", o).Exit);
        Assert.Equal(2, CliRun.Run("poke", input, "swap_writepage", "zz", "-o", o).Exit);
        Assert.Equal(2, CliRun.Run("poke", input, "--flip-jump-key", "on_key", "--index", "7", "-o", o).Exit);
        Assert.Equal(2, CliRun.Run("poke", input, "--flip-jump-site", "swap_writepage+0x3", "-o", o).Exit);
        Assert.False(File.Exists(o));
    }
}
