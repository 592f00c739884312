using System.Buffers.Binary;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Tables;

/// <summary>
/// One v6.11+ runtime constant (include/asm-generic/vmlinux.lds.h RUNTIME_CONST, arch/x86/include/asm/runtime-const.h):
/// the section runtime_ptr_NAME or runtime_shift_NAME holds s32 offsets, each from its own entry to the immediate that
/// runtime_const_init() overwrites (8 bytes of a movabs for a pointer, the 1-byte count of a shift).
/// </summary>
public sealed record RuntimeConst(string Name, bool Pointer, ulong Start, IReadOnlyList<ulong> Sites)
{
    /// <summary>Bytes written at each site: 8 for runtime_const_ptr, 1 for runtime_const_shift_right_32.</summary>
    public int Length => Pointer ? 8 : 1;

    /// <summary>Every runtime constant of the image, by its __start_/__stop_runtime_{ptr,shift}_NAME symbols.</summary>
    public static List<RuntimeConst> Read(KernelImage image, ImageSymbols symbols)
    {
        var result = new List<RuntimeConst>();
        foreach (var symbol in symbols.Names.Entries)
        {
            bool ptr = symbol.Name.StartsWith("__start_runtime_ptr_", StringComparison.Ordinal);
            if (!ptr && !symbol.Name.StartsWith("__start_runtime_shift_", StringComparison.Ordinal)) continue;
            string name = symbol.Name[(ptr ? "__start_runtime_ptr_" : "__start_runtime_shift_").Length..];
            if (result.Any(r => r.Name == name && r.Pointer == ptr)) continue;
            if (!symbols.TryFind("__stop_" + symbol.Name["__start_".Length..], out ulong stop, out _) || stop <= symbol.Address
                || stop - symbol.Address > 1 << 20) continue;
            var offsets = new byte[(int)(stop - symbol.Address)];
            if (image.Read(symbol.Address, offsets) != offsets.Length) continue;
            var sites = new List<ulong>(offsets.Length / 4);
            for (int i = 0; i + 4 <= offsets.Length; i += 4)
                sites.Add(symbol.Address + (ulong)i + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(offsets.AsSpan(i)));
            result.Add(new RuntimeConst(name, ptr, symbol.Address, sites));
        }
        return result;
    }
}
