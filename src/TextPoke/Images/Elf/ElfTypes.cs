namespace TextPoke.Images.Elf;

// ELF64 constants used by textpoke (System V gABI, x86-64 psABI).
public static class ElfConstants
{
    public const ushort ET_REL = 1, ET_EXEC = 2, ET_DYN = 3;
    public const ushort EM_X86_64 = 62;
    public const uint SHT_NULL = 0, SHT_PROGBITS = 1, SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_RELA = 4, SHT_NOTE = 7, SHT_NOBITS = 8, SHT_REL = 9;
    public const ulong SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXECINSTR = 4;
    public const uint PT_LOAD = 1, PT_NOTE = 4;
    public const ushort SHN_UNDEF = 0, SHN_ABS = 0xfff1, SHN_COMMON = 0xfff2, SHN_XINDEX = 0xffff;
    public const byte STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2, STT_SECTION = 3, STT_FILE = 4;
    public const byte STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;

    // x86-64 relocation types (psABI).
    public const uint R_X86_64_NONE = 0, R_X86_64_64 = 1, R_X86_64_PC32 = 2, R_X86_64_PLT32 = 4,
        R_X86_64_32 = 10, R_X86_64_32S = 11, R_X86_64_PC64 = 24;

    public static string MachineName(ushort machine) => machine switch
    {
        3 => "i386", 8 => "MIPS", 20 => "PowerPC", 21 => "PowerPC64", 22 => "s390", 40 => "ARM",
        42 => "SuperH", 43 => "SPARC v9", 50 => "IA-64", 62 => "x86-64", 183 => "AArch64",
        243 => "RISC-V", 258 => "LoongArch", _ => $"machine {machine}",
    };

    public static string RelocationName(uint type) => type switch
    {
        R_X86_64_NONE => "R_X86_64_NONE", R_X86_64_64 => "R_X86_64_64", R_X86_64_PC32 => "R_X86_64_PC32",
        R_X86_64_PLT32 => "R_X86_64_PLT32", R_X86_64_32 => "R_X86_64_32", R_X86_64_32S => "R_X86_64_32S",
        R_X86_64_PC64 => "R_X86_64_PC64", _ => $"relocation type {type}",
    };
}

/// <summary>One section header.</summary>
public sealed record ElfSection(int Index, string Name, uint Type, ulong Flags, ulong Address, ulong Offset, ulong Size, uint Link, uint Info, ulong Alignment,
    ulong EntrySize)
{
    public bool IsAllocated => (Flags & ElfConstants.SHF_ALLOC) != 0;
    public bool IsExecutable => (Flags & ElfConstants.SHF_EXECINSTR) != 0;
    public bool IsWritable => (Flags & ElfConstants.SHF_WRITE) != 0;
    public bool HasFileBytes => Type != ElfConstants.SHT_NOBITS && Type != ElfConstants.SHT_NULL;
    public bool ContainsAddress(ulong address) => address >= Address && address - Address < Size;
}

/// <summary>One program header.</summary>
public readonly record struct ElfSegment(uint Type, uint Flags, ulong Offset, ulong VirtualAddress, ulong PhysicalAddress, ulong FileSize, ulong MemorySize);

/// <summary>One ELF note.</summary>
public readonly record struct ElfNote(string Owner, uint Type, long DescriptorOffset, int DescriptorSize);

/// <summary>One symbol table entry. For ET_REL the value is section-relative, as in the file.</summary>
public readonly record struct ElfSymbol(string Name, ulong Value, ulong Size, byte Type, byte Bind, ushort SectionIndex)
{
    public bool IsUndefined => SectionIndex == ElfConstants.SHN_UNDEF;
}

/// <summary>One RELA entry.</summary>
public readonly record struct ElfRelocation(ulong Offset, uint Type, uint SymbolIndex, long Addend);
