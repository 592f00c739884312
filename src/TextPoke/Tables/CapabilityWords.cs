using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Tables;

/// <summary>
/// NCAPINTS and NBUGINTS of the image itself, measured from the sizes of x86_cap_flags[NCAPINTS*32] and
/// x86_bug_flags[NBUGINTS*32] (arch/x86/kernel/cpu/capflags.c, generated from cpufeatures.h; 8-byte pointers, so 256
/// bytes per word). Stable kernels grow them by backports: Debian's 5.10.0-32 has 22 capability words, its 5.10.0-43
/// and later 23, so no era table can give the limit apply_alternatives() enforces, BUG_ON(feature >= (NCAPINTS +
/// NBUGINTS) * 32).
/// </summary>
public readonly record struct CapabilityWords(int CapInts, int BugInts)
{
    /// <summary>(NCAPINTS + NBUGINTS) * 32: the first feature number apply_alternatives() refuses.</summary>
    public int Limit => (CapInts + BugInts) * 32;

    /// <summary>The image's words, or null when it has neither array named with a plausible size.</summary>
    public static CapabilityWords? Measure(KernelImage image, ImageSymbols symbols)
    {
        int? Words(string name, int min, int max)
        {
            if (!symbols.TryFind(name, out ulong at, out var table) || table!.Lookup(at) is not { Offset: 0, Size: var size }) return null;
            // Another symbol right after the array bounds it; a size that is not whole words is padding or a wrong neighbour.
            return size % 256 == 0 && size / 256 is var words && words >= (ulong)min && words <= (ulong)max ? (int)words : null;
        }
        return Words("x86_cap_flags", 10, 64) is { } cap && Words("x86_bug_flags", 1, 8) is { } bug ? new CapabilityWords(cap, bug) : null;
    }
}
