using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using TextPoke.Boot;
using TextPoke.Emulation;
using TextPoke.Images;
using TextPoke.Symbols;
using TextPoke.Tests.Support;
using TextPoke.X86;

namespace TextPoke.Tests.Real;

/// <summary>simulate --boot on real kernels, and against the text of the same kernel booted in QEMU.</summary>
[Trait("Tier", "full")]
public class BootSimulationTests
{
    static BootPatcher Simulate(KernelImage image, string cpu = "qemu64", bool keepGoing = false)
    {
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        var names = CpuFeatureNames.Load(image, symbols);
        return BootPatcher.Run(image, symbols, CpuModel.Parse(cpu, names), names, keepGoing);
    }

    [Fact]
    public void DebianKernels_BootCleanOnQemu64_EveryStepRuns()
    {
        foreach (var path in new[] { DebianKernels.GenericVmlinuz, DebianKernels.CloudVmlinuz })
        {
            using var image = KernelImage.Open(path);
            var boot = Simulate(image);
            Assert.Equal(0, boot.Bugs + boot.Warnings);
            Assert.Equal("v5.13..v6.2", boot.Era);
            var steps = boot.Steps.ToDictionary(s => s.Name);
            foreach (var name in new[] { "static_calls", "ftrace", "paravirt", "retpolines", "returns", "alternatives" })
                Assert.True(steps[name].Skipped == null && steps[name].Sites > 1000, $"{path}: {name}: {steps[name].Skipped} ({steps[name].Sites} sites)");
            Assert.Equal(steps["returns"].Sites, steps["returns"].Changed);   // no RETHUNK on qemu64: every return becomes RET
            Assert.Equal(0, steps["retpolines"].Changed);                      // RETPOLINE: the thunk calls stay
            Assert.Equal(steps["ftrace"].Sites, steps["ftrace"].Changed);     // GCC -mrecord-mcount: every call becomes NOP5
        }
    }

    /// <summary>A copy of Debian's 6.1.0-53 payload with bytes poked at the middle site of one table, boot-simulated on qemu64.</summary>
    static BootPatcher PokeAndSimulate(string table, byte[] bytes)
    {
        byte[] elf;
        ulong address;
        using (var golden = KernelImage.Open(DebianKernels.GoldenVmlinuz))
        {
            var report = global::TextPoke.Checks.CheckRunner.Run(golden, ImageSymbols.Load(golden, lookBeside: false), listSites: true).Tables
                .Single(t => t.Name == table);
            (elf, address) = (golden.ElfImage.ToArray(), report.Sites[report.Sites.Count / 2].Address);
        }
        bytes.CopyTo(elf, ImageWriterOffset(elf, address));
        using var image = KernelImage.FromElfBytes("poked", elf);
        return Simulate(image);
    }

    static long ImageWriterOffset(byte[] elf, ulong address)
    {
        using var image = KernelImage.FromElfBytes("offsets", elf);
        return ImageWriter.FileOffset(image, address);
    }

    [Fact]
    public void PokedStaticCallSite_BugsInStaticCallInit_AndTheBootStops()
    {
        var boot = PokeAndSimulate("static_calls", [0xcc]);
        var bug = Assert.Single(boot.Events, e => e.Kind == BootEventKind.Bug);
        Assert.Equal("static_calls", bug.Step);
        Assert.StartsWith("unexpected static_call insn opcode 0xcc at ", bug.KernelLines[0]);
        Assert.Matches(@"^kernel BUG at arch/x86/kernel/static_call\.c:\d+!$", bug.KernelLines[1]);
        Assert.True(boot.Halted);
    }

    [Fact]
    public void PokedReturnSite_WarnsMissingReturnThunk_AndBootGoesOn()
    {
        var boot = PokeAndSimulate("return_sites", [0xc3]);
        var warning = Assert.Single(boot.Events, e => e.Kind == BootEventKind.Warning);
        Assert.Equal("returns", warning.Step);
        Assert.Matches(@"^WARNING: CPU: 0 PID: 0 at arch/x86/kernel/alternative\.c:\d+ apply_returns$", warning.KernelLines[0]);
        Assert.StartsWith("missing return thunk: ", warning.KernelLines[1]);
        Assert.False(boot.Halted);
        Assert.Null(boot.Steps.Single(s => s.Name == "alternatives").Skipped); // the steps after it still ran
    }

    /// <summary>
    /// Boots Debian's generic kernel in QEMU (TCG, -cpu qemu64, two CPUs, nokaslr), reads boot_cpu_data's capability words
    /// and the whole of _text.._etext back through the QEMU monitor, and compares: the qemu64 preset must be the features
    /// that kernel saw, and every byte the emulated boot wrote must be what the real boot left in memory — except static
    /// calls that the kernel re-targets after static_call_init (PREEMPT_DYNAMIC's sched_dynamic_update and friends).
    /// </summary>
    [Fact]
    public void QemuBoot_LiveKernelTextEqualsTheEmulatedBoot()
    {
        var kernel = DebianKernels.GenericVmlinuz;
        using var image = KernelImage.Open(kernel);
        var symbols = ImageSymbols.Load(image, lookBeside: false);
        ulong Sym(string n) { Assert.True(symbols.TryFind(n, out ulong a, out _), n); return a; }
        ulong text = Sym("_text"), etext = Sym("_etext"), bootCpuData = Sym("boot_cpu_data");

        var dir = Repo.Scratch("live-text");
        var initrd = Path.Combine(dir, "initrd.cpio");
        var busybox = Initramfs.FindBusybox() ?? throw new InvalidOperationException("busybox-static is not installed (scripts/setup)");
        File.WriteAllBytes(initrd, Initramfs.Build(busybox, "textpoke-live-done", ["echo textpoke-live-ready", "sleep 600"]));
        var socket = Path.Combine(dir, "monitor.sock");
        var log = Path.Combine(dir, "console.log");
        var caps = Path.Combine(dir, "caps.bin");
        var live = Path.Combine(dir, "text.bin");
        foreach (var f in new[] { socket, log, caps, live }) File.Delete(f);
        var args = Qemu.Arguments(new QemuOptions(kernel, initrd, "console=ttyS0 nokaslr panic=-1", MemoryMb: 512, Cpus: 2));
        args.AddRange(["-cpu", "qemu64", "-display", "none", "-serial", $"file:{log}", "-monitor", $"unix:{socket},server,nowait"]);
        var start = new ProcessStartInfo("qemu-system-x86_64", args) { RedirectStandardOutput = true, RedirectStandardError = true,
            RedirectStandardInput = true };
        using var qemu = Process.Start(start)!;
        try
        {
            var until = DateTime.UtcNow.AddSeconds(120);
            while (!(File.Exists(log) && File.ReadAllText(log).Contains("textpoke-live-ready")))
            {
                Assert.False(qemu.HasExited, "QEMU exited before the kernel reached init");
                Assert.True(DateTime.UtcNow < until, "the kernel did not reach init within 120 s");
                Thread.Sleep(200);
            }
            using var monitor = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            monitor.Connect(new UnixDomainSocketEndPoint(socket));
            void Send(string command) => monitor.Send(Encoding.ASCII.GetBytes(command + "\n"));
            Send($"memsave 0x{bootCpuData + 40:x} 96 \"{caps}\"");          // cpuinfo_x86.x86_capability (offset 40 in 6.1)
            Send($"memsave 0x{text:x} 0x{etext - text:x} \"{live}\"");
            until = DateTime.UtcNow.AddSeconds(60);
            while (!(File.Exists(live) && new FileInfo(live).Length == (long)(etext - text) && File.Exists(caps) && new FileInfo(caps).Length == 96))
            {
                Assert.True(DateTime.UtcNow < until, "QEMU did not save guest memory");
                Thread.Sleep(200);
            }
            Thread.Sleep(500);
            Send("quit");
        }
        finally
        {
            if (!qemu.WaitForExit(10_000)) qemu.Kill(entireProcessTree: true);
        }

        // The preset is what the kernel saw.
        var words = File.ReadAllBytes(caps);
        var seen = new HashSet<int>();
        for (int w = 0; w < 24; w++)
            for (int b = 0; b < 32; b++)
                if ((BinaryPrimitives.ReadUInt32LittleEndian(words.AsSpan(w * 4)) >> b & 1) != 0) seen.Add(w * 32 + b);
        var names = CpuFeatureNames.Load(image, symbols);
        Assert.Equal(seen.Order(), CpuModel.Parse("qemu64", names).Features.Order());

        // Every emulated write equals live memory, step by step.
        var boot = BootPatcher.Run(image, symbols, CpuModel.Parse("qemu64", names), names);
        Assert.Equal(0, boot.Bugs + boot.Warnings);
        var memory = File.ReadAllBytes(live);
        var final = new Dictionary<ulong, (byte Value, string Step)>();
        foreach (var p in boot.Patches)
            for (int i = 0; i < p.New.Length; i++) final[p.Address + (ulong)i] = (p.New[i], p.Step);
        var same = new Dictionary<string, int>();
        var differ = new Dictionary<string, List<ulong>>();
        foreach (var (address, (value, step)) in final)
        {
            if (address < text || address >= etext) continue; // init text is freed after boot
            if (memory[address - text] == value) same[step] = same.GetValueOrDefault(step) + 1;
            else (differ.TryGetValue(step, out var l) ? l : differ[step] = []).Add(address);
        }
        foreach (var step in new[] { "ftrace", "paravirt", "returns", "alternatives" })
        {
            Assert.True(same.GetValueOrDefault(step) > 5_000, $"{step}: only {same.GetValueOrDefault(step)} bytes compared");
            Assert.False(differ.ContainsKey(step),
                $"{step}: {differ.GetValueOrDefault(step)?.Count} bytes differ from the live kernel, first at " +
                $"{symbols.Names.FormatPS(differ.GetValueOrDefault(step)?.FirstOrDefault() ?? 0)}");
        }
        // Static calls: every site keeps what static_call_init wrote, except the sites of the keys PREEMPT_DYNAMIC's
        // sched_dynamic_update() re-targets later in boot (Debian defaults to preempt=voluntary).
        Assert.True(same.GetValueOrDefault("static_calls") > 5_000);
        string[] preemptDynamic = ["__SCK__cond_resched", "__SCK__might_resched", "__SCK__preempt_schedule", "__SCK__preempt_schedule_notrace",
            "__SCK__irqentry_exit_cond_resched"];
        var keyAt = new Dictionary<ulong, string?>();
        foreach (var p in boot.Patches.Where(p => p.Step == "static_calls"))
            for (int i = 0; i < p.New.Length; i++) keyAt[p.Address + (ulong)i] = p.Key;
        var retargeted = differ.GetValueOrDefault("static_calls", []).Select(a => keyAt[a]).Distinct().ToList();
        Assert.All(retargeted, key => Assert.Contains(key, preemptDynamic));
        // A whole function, patched sites and all, reads the same as in the live kernel.
        ulong function = Sym("ksys_write");
        Assert.Equal(X86Code.Hex(memory.AsSpan((int)(function - text), 64)), X86Code.Hex(ReadPatched(boot, function, 64)));
    }

    static byte[] ReadPatched(BootPatcher boot, ulong address, int length)
    {
        var bytes = new byte[length];
        boot.Read(address, bytes);
        return bytes;
    }
}
