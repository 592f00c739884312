using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Images.Elf;
using static TextPoke.Images.Elf.ElfConstants;

namespace TextPoke.Demo;

/// <summary>
/// A tiny kernel image, made in memory, that reproduces the seed (ClangBuiltLinux issue 1731): swap_writepage is 0x60
/// bytes long and still holds the 2-byte "jmp" (eb 1c) at +0x1c that objtool should have turned into "66 90"; the key
/// frontswap_enabled_key is off, and the entry carries objtool's NOP mark (key bit 1).
/// </summary>
public static class SeedDemo
{
    public const ulong TextAddress = 0xffffffff812ff3e0;      // swap_writepage
    public const ulong RodataAddress = 0xffffffff82438090;    // __start___jump_table
    public const ulong BssAddress = 0xffffffff83fdfe40;
    public const ulong KeyAddress = 0xffffffff83fdfe70;       // frontswap_enabled_key
    public const ulong SiteAddress = TextAddress + 0x1c;

    /// <summary>The line the kernel printed in the seed, with the real address in place of the hashed %p.</summary>
    public static string ExpectedLine =>
        $"jump_label: Fatal kernel bug, unexpected op at swap_writepage+0x1c/0x60 [{SiteAddress:x16}] (eb 1c 48 89 df != 66 90 0f 1f 00)) size:2 type:1";

    static readonly byte[] SwapWritepage =
    [
        0xf3, 0x0f, 0x1e, 0xfa,             // 00 endbr64
        0x0f, 0x1f, 0x44, 0x00, 0x00,       // 04 nop (ftrace site)
        0x55,                               // 09 push %rbp
        0x48, 0x89, 0xe5,                   // 0a mov %rsp,%rbp
        0x41, 0x54,                         // 0d push %r12
        0x49, 0x89, 0xf4,                   // 0f mov %rsi,%r12
        0x53,                               // 12 push %rbx
        0x48, 0x89, 0xfb,                   // 13 mov %rdi,%rbx
        0x48, 0x8b, 0x47, 0x08,             // 16 mov 0x8(%rdi),%rax
        0x66, 0x90,                         // 1a xchg %ax,%ax
        0xeb, 0x1c,                         // 1c jmp 3a  <- static_branch_unlikely(&frontswap_enabled_key), never NOPed
        0x48, 0x89, 0xdf,                   // 1e mov %rbx,%rdi
        0x4c, 0x89, 0xe6,                   // 21 mov %r12,%rsi
        0x31, 0xc0,                         // 24 xor %eax,%eax
        0x5b,                               // 26 pop %rbx
        0x41, 0x5c,                         // 27 pop %r12
        0x5d,                               // 29 pop %rbp
        0xc3,                               // 2a ret
        0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, // 2b..39 int3
        0x48, 0x89, 0xdf,                   // 3a mov %rbx,%rdi   (frontswap_store path)
        0x4c, 0x89, 0xe6,                   // 3d mov %r12,%rsi
        0xe8, 0x1b, 0x00, 0x00, 0x00,       // 40 call 60 <swap_readpage>
        0x85, 0xc0,                         // 45 test %eax,%eax
        0xeb, 0xd5,                         // 47 jmp 1e
        0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, // 49..58
        0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,                                                       // 59..5f
    ];

    static readonly byte[] SwapReadpage =
    [
        0xf3, 0x0f, 0x1e, 0xfa, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x31, 0xc0, 0xc3,
        0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
    ];

    /// <summary>Builds the image's ELF bytes.</summary>
    public static byte[] BuildElf()
    {
        var text = SwapWritepage.Concat(SwapReadpage).ToArray();
        if (SwapWritepage.Length != 0x60) throw new InvalidOperationException("swap_writepage must be 0x60 bytes");
        var table = new byte[16];
        BinaryPrimitives.WriteInt32LittleEndian(table, unchecked((int)(SiteAddress - RodataAddress)));
        BinaryPrimitives.WriteInt32LittleEndian(table.AsSpan(4), unchecked((int)(TextAddress + 0x3a - (RodataAddress + 4))));
        // Key field: key + (2 | branch) - &field; branch 0 (static_branch_unlikely), bit 1 = "objtool must NOP this".
        BinaryPrimitives.WriteInt64LittleEndian(table.AsSpan(8), unchecked((long)(KeyAddress + 2 - (RodataAddress + 8))));
        var banner = "Linux version 5.19.0-local+ (textpoke demo) (clang version 15.0.0, LLD 15.0.0) #25 SMP PREEMPT\n\0"u8.ToArray();
        var rodata = table.Concat(banner).ToArray();
        return new ElfBuilder()
            .AddSection(".text", TextAddress, text, SHF_ALLOC | SHF_EXECINSTR, 16)
            .AddSection(".rodata", RodataAddress, rodata, SHF_ALLOC, 8)
            .AddNoBits(".bss", BssAddress, 0x100)
            .AddSymbol("swap_writepage", TextAddress, 0x60, STT_FUNC, ".text")
            .AddSymbol("swap_readpage", TextAddress + 0x60, (ulong)SwapReadpage.Length, STT_FUNC, ".text")
            .AddSymbol(Tables.JumpTable.StartSymbol, RodataAddress, 0, STT_NOTYPE, ".rodata")
            .AddSymbol(Tables.JumpTable.StopSymbol, RodataAddress + 16, 0, STT_NOTYPE, ".rodata")
            .AddSymbol("linux_banner", RodataAddress + 16, (ulong)banner.Length, STT_OBJECT, ".rodata")
            .AddSymbol("frontswap_enabled_key", KeyAddress, 16, STT_OBJECT, ".bss")
            .Build();
    }

    /// <summary>Opens the demo image through the same loader as real images.</summary>
    public static KernelImage Open() => KernelImage.FromElfBytes("textpoke-demo (built in memory: ClangBuiltLinux #1731, swap_writepage)", BuildElf());
}
