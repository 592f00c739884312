using TextPoke.Images;

namespace TextPoke.Boot;

/// <summary>Everything `boot` needs to know: the kernel, the initramfs or what the default one runs, limits and QEMU settings.</summary>
public sealed record BootSessionRequest(
    string Kernel, string? Initrd = null, string? Marker = null, IReadOnlyList<string>? Run = null, string? Append = null,
    int TimeoutSeconds = 120, int SilenceSeconds = 60, string? LogPath = null, int Repeat = 1, int MemoryMb = 1024, int Cpus = 1,
    string Accel = "auto", string Binary = "qemu-system-x86_64", bool Verify = false, string? Cpu = null, IReadOnlyList<string>? Inject = null);

/// <summary>Follows a session as it runs: each boot's start, its console lines, its end.</summary>
public interface IBootObserver
{
    void Started(int index, int count);
    void Line(string line);
    void Finished(BootResult result);
}

/// <summary>
/// A boot session: the request checked, the accelerator chosen (KVM only when it really works here), a default
/// busybox initramfs written to a private temporary folder when none is given, the kernel booted N times, and the
/// folder removed. Cancelling the token stops the current boot and skips the rest.
/// </summary>
public sealed class BootSession
{
    BootSession(BootSessionRequest request, string kind, string accelerator, string? note, string? busybox, string marker)
    {
        Request = request;
        Kind = kind;
        Accelerator = accelerator;
        Note = note;
        _busybox = busybox;
        _marker = marker;
    }

    readonly string? _busybox;
    readonly string _marker;

    public BootSessionRequest Request { get; }
    /// <summary>What the kernel file is ("bzImage", "ELF vmlinux with a PVH note").</summary>
    public string Kind { get; }
    public string Accelerator { get; }
    /// <summary>Why the accelerator is not the one asked for, or null.</summary>
    public string? Note { get; }

    /// <summary>Checks the request and decides the accelerator; throws <see cref="RequestException"/> or <see cref="ImageFormatException"/>.</summary>
    public static BootSession Prepare(BootSessionRequest request)
    {
        // The kernel is opened once: what QEMU can boot, where its log buffer is, and (--verify) its memory and injections.
        using var image = KernelImage.Open(request.Kernel);
        string kind = Qemu.Bootable(image);
        if (request.Repeat < 1) throw new RequestException("--repeat needs at least 1");
        if (request.TimeoutSeconds < 1) throw new RequestException("--timeout needs at least 1 second");
        if (request.Initrd != null && !File.Exists(request.Initrd)) throw new ImageFormatException(request.Initrd, "cannot open: no such file");
        if (request.Verify && request.Initrd != null && request.Marker == null)
            throw new RequestException("--verify with --initrd needs --marker, printed by an init that stays up after it (the guest's memory is read then)");
        string marker = request.Marker ?? $"TEXTPOKE-BOOTED-{Guid.NewGuid():N}"[..32];
        string? busybox = null;
        if (request.Initrd == null && (busybox = Initramfs.FindBusybox()) == null)
            throw new RequestException("no static busybox (Debian package busybox-static) for the default initramfs; install it or pass --initrd FILE");
        string accelerator = request.Accel;
        string? note = null;
        if (accelerator == "auto")
        {
            var (usable, why) = Qemu.ProbeKvm(request.Binary);
            accelerator = usable ? "kvm" : "tcg";
            if (!usable) note = $"KVM unusable here ({why}): using TCG";
        }
        else if (accelerator is not ("kvm" or "tcg")) throw new RequestException($"--accel {accelerator}: use kvm, tcg or auto");
        IReadOnlyList<(ulong, ulong)>? memory = null;
        List<(ulong, byte[])>? inject = null;
        if (request.Inject is { Count: > 0 } && !request.Verify) throw new RequestException("--inject plants bytes for --verify to find: give --verify too");
        var symbols = Symbols.ImageSymbols.Load(image);
        if (request.Verify)
        {
            // [_text, _end): the text to compare and the data that explains it (keys, static-call targets, boot_cpu_data).
            if (!symbols.TryFind("_text", out ulong text, out _) || !symbols.TryFind("_end", out ulong end, out _) || end <= text || end - text > 1UL << 31)
                throw new ImageFormatException(request.Kernel, "no _text/_end symbols: the kernel's memory cannot be delimited for --verify");
            memory = [(text, end - text)];
            inject = request.Inject?.Select(spec => ParseInjection(spec, symbols)).ToList();
        }
        return new BootSession(request, kind, accelerator, note, busybox, marker)
        {
            _memory = memory, _inject = inject, _logBuffer = LogBufferOf(symbols),
        };
    }

    Live.PrintkRingLayout? _logBuffer;

    /// <summary>
    /// __log_buf (the static printk buffer early messages land in) and its size (to the next symbol, at most 16 MiB), with
    /// the ring's descriptors and infos when the kernel names them (v5.10+), so that a guest that falls silent before its
    /// console exists can still be read; null when the kernel has no symbols.
    /// </summary>
    static Live.PrintkRingLayout? LogBufferOf(Symbols.ImageSymbols symbols)
    {
        // Each array's extent runs to the next symbol (%pS's size), at most 16 MiB.
        ulong Extent(string name, out ulong at) => symbols.TryFind(name, out at, out var table) && table!.Lookup(at) is { Offset: 0 } hit
            ? Math.Min(hit.Size, 16UL << 20) : 0;
        ulong length = Extent("__log_buf", out ulong start);
        if (length < 4096) return null;
        // The ring's data size is a power of two (CONFIG_LOG_BUF_SHIFT); the symbol after it may leave padding.
        length = 1UL << System.Numerics.BitOperations.Log2(length);
        // As many descriptors as both arrays hold, a power of two (the ring's count_bits).
        ulong fits = Math.Min(Extent("_printk_rb_static_descs", out ulong descs) / Live.PrintkRingLayout.DescSize,
            Extent("_printk_rb_static_infos", out ulong infos) / Live.PrintkRingLayout.InfoSize);
        if (fits > 0) return new(start, length, descs, 1 << System.Numerics.BitOperations.Log2((uint)Math.Min(fits, 1 << 24)), infos);
        return new(start, length, 0, 0, 0);
    }

    IReadOnlyList<(ulong Start, ulong Length)>? _memory;
    IReadOnlyList<(ulong Address, byte[] Bytes)>? _inject;

    /// <summary>--inject WHERE=HEX: WHERE is symbol+0xOFF or a hexadecimal address, HEX the bytes (spaces allowed).</summary>
    public static (ulong Address, byte[] Bytes) ParseInjection(string spec, Symbols.ImageSymbols symbols)
    {
        int eq = spec.LastIndexOf('=');
        if (eq <= 0) throw new RequestException($"--inject {spec}: expected WHERE=HEX, e.g. ksys_write+0x10=cc");
        string where = spec[..eq].Trim();
        var bytes = X86.X86Code.ParseHex(spec[(eq + 1)..]);
        if (bytes is not { Length: > 0 and <= 64 }) throw new RequestException($"--inject {spec}: the bytes must be 1 to 64 hexadecimal bytes");
        ulong address;
        int plus = where.LastIndexOf('+');
        string name = plus > 0 ? where[..plus] : where;
        ulong offset = 0;
        if (plus > 0 && !TryHex(where[(plus + 1)..], out offset)) throw new RequestException($"--inject {spec}: bad offset {where[(plus + 1)..]}");
        if (symbols.TryFind(name, out ulong at, out _)) address = at + offset;
        else if (plus < 0 && where.StartsWith("0x", StringComparison.OrdinalIgnoreCase) && TryHex(where, out ulong absolute)) address = absolute;
        else throw new RequestException($"--inject {spec}: no symbol {name} in the kernel");
        return (address, bytes);
    }

    static bool TryHex(string text, out ulong value) => ulong.TryParse(text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text,
        System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out value);

    /// <summary>With --verify: the kernel command line gains nokaslr, so that guest addresses are the image's.</summary>
    public const string VerifyAppend = "nokaslr";

    /// <summary>Boots the kernel Request.Repeat times (fewer when cancelled) and returns every boot's result.</summary>
    public IReadOnlyList<BootResult> Run(IBootObserver? observer = null, CancellationToken cancel = default)
    {
        var r = Request;
        var work = Directory.CreateTempSubdirectory("textpoke-boot");
        try
        {
            string initrdPath = r.Initrd ?? Path.Combine(work.FullName, "initramfs.cpio");
            if (r.Initrd == null) File.WriteAllBytes(initrdPath, Initramfs.Build(_busybox!, _marker, r.Run?.ToArray() ?? [], hold: r.Verify));
            string appendText = Qemu.DefaultAppend + (r.Verify ? " " + VerifyAppend : "") + (r.Append is { Length: > 0 } extra ? " " + extra : "");
            var results = new List<BootResult>();
            // The logs go where asked, else into a private folder of their own (mode 0700, an unguessable name) that
            // outlives the session for the user to read: never a predictable name in the shared temporary directory.
            string? logDir = r.LogPath == null ? Directory.CreateTempSubdirectory("textpoke-boot-logs-").FullName : null;
            for (int i = 0; i < r.Repeat && !cancel.IsCancellationRequested; i++)
            {
                string logPath = r.LogPath is { } l ? (r.Repeat == 1 ? l : $"{l}.{i + 1}") : Path.Combine(logDir!, $"boot-{i + 1}.log");
                string? socket = _memory != null || _logBuffer != null ? Path.Combine(work.FullName, $"monitor-{i + 1}.sock") : null;
                string? gdb = _inject is { Count: > 0 } ? Path.Combine(work.FullName, $"gdb-{i + 1}.sock") : null;
                var boot = new BootRequest(new QemuOptions(r.Kernel, initrdPath, appendText, r.MemoryMb, r.Cpus, Accelerator, r.Binary, socket, r.Cpu, gdb),
                    _marker, TimeSpan.FromSeconds(r.TimeoutSeconds), TimeSpan.FromSeconds(Math.Min(r.SilenceSeconds, r.TimeoutSeconds)), logPath,
                    MarkerKnown: r.Initrd == null || r.Marker != null, LogExclusive: logDir != null, MemoryAtMarker: _memory, InjectAtMarker: _inject,
                    LogBuffer: _logBuffer);
                observer?.Started(i, r.Repeat);
                var result = BootRunner.Run(boot, observer == null ? null : observer.Line, cancel);
                observer?.Finished(result);
                results.Add(result);
            }
            return results;
        }
        finally
        {
            try { work.Delete(recursive: true); } catch (IOException) { }
        }
    }
}
