namespace TextPoke.Symbols;

/// <summary>One symbol: address, name and the nm type letter (as kallsyms stores it).</summary>
public readonly record struct SymbolEntry(ulong Address, string Name, char Type)
{
    public bool IsText => Type is 'T' or 't' or 'W' or 'w';
}
