using System.Globalization;
using TextPoke.Images;
using TextPoke.Symbols;

namespace TextPoke.Operations;

/// <summary>Locations as users write them: "symbol+0xoff" (a "/0xsize" is allowed and ignored), "symbol", or a hex address.</summary>
public static class Locations
{
    public static ulong Resolve(KernelImage image, ImageSymbols symbols, string text)
    {
        string name = text, offsetText = "0";
        int plus = text.LastIndexOf('+');
        if (plus > 0) { name = text[..plus]; offsetText = text[(plus + 1)..]; }
        int slash = offsetText.IndexOf('/');
        if (slash >= 0) offsetText = offsetText[..slash];
        if (!TryHex(offsetText, out ulong offset)) throw new RequestException($"'{text}': bad offset '{offsetText}'");
        if (symbols.TryFind(name, out ulong address, out _)) return address + offset;
        if (plus < 0 && TryHex(text, out address) && image.SectionAt(address) != null) return address;
        throw new RequestException($"'{name}' is neither a symbol of {image.Path} ({symbols.Describe()}) nor an address inside it");
    }

    static bool TryHex(string text, out ulong value)
    {
        var t = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        return ulong.TryParse(t, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out value);
    }
}
