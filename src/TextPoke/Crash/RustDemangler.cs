using System.Globalization;
using System.Text;

namespace TextPoke.Crash;

/// <summary>
/// Rust's v0 symbol mangling ("_R...", RFC 2603), as kernel Rust code is built with, turned back into paths as
/// rustc-demangle prints them without crate hashes: "_RNvMs3_NtCs..._11rust_binder7processNtB5_7Process10update_ref"
/// is "&lt;rust_binder::process::Process&gt;::update_ref". Anything that does not parse is returned unchanged.
/// </summary>
public static class RustDemangler
{
    /// <summary>
    /// The demangled name, or null when <paramref name="symbol"/> is not a well-formed v0 symbol. The kernel's own
    /// prefixes for a function's CFI hash and padding ("__cfi_", "__pfx_") are kept in front of the demangled name.
    /// </summary>
    public static string? Demangle(string symbol)
    {
        foreach (var prefix in KernelPrefixes)
            if (symbol.StartsWith(prefix + "_R", StringComparison.Ordinal))
                return Demangle(symbol[prefix.Length..]) is { } inner ? prefix + inner : null;
        if (!symbol.StartsWith("_R", StringComparison.Ordinal)) return null;
        var parser = new Parser(symbol, 2);
        try
        {
            // An optional encoding version (decimal) before the path; only version 0 (absent) exists.
            if (parser.Peek() is >= '0' and <= '9') return null;
            var output = new StringBuilder();
            parser.Path(output, inValue: true);
            // What may follow the path is the instantiating crate and a vendor suffix (".llvm.123"): not printed.
            return output.ToString();
        }
        catch (FormatException) { return null; }
        catch (IndexOutOfRangeException) { return null; }
        catch (OverflowException) { return null; }
    }

    static readonly string[] KernelPrefixes = ["__cfi_", "__pfx_"];

    sealed class Parser(string text, int start)
    {
        int _at = start;
        int _depth, _steps;
        const int MaxDepth = 200;
        // Back-references can name a subtree many times over: bound the whole work, not only the depth.
        const int MaxSteps = 20_000;

        public char Peek() => _at < text.Length ? text[_at] : '\0';
        char Next() => _at < text.Length ? text[_at++] : throw new FormatException("truncated");
        bool Eat(char c)
        {
            if (Peek() != c) return false;
            _at++;
            return true;
        }

        /// <summary>Base-62 number terminated by '_': "_" is 0, otherwise the digits' value plus one.</summary>
        long Base62()
        {
            if (Eat('_')) return 0;
            long value = 0;
            while (true)
            {
                char c = Next();
                // Crate hashes are 64-bit: their value wraps harmlessly (only back-references and indices use it).
                if (c == '_') return unchecked(value + 1);
                int digit = c switch
                {
                    >= '0' and <= '9' => c - '0',
                    >= 'a' and <= 'z' => c - 'a' + 10,
                    >= 'A' and <= 'Z' => c - 'A' + 36,
                    _ => throw new FormatException("bad base-62 digit"),
                };
                value = unchecked(value * 62 + digit);
            }
        }

        long Decimal()
        {
            char first = Next();
            if (first is < '0' or > '9') throw new FormatException("expected a number");
            long value = first - '0';
            if (value == 0) return 0;
            while (Peek() is >= '0' and <= '9') value = checked(value * 10 + (Next() - '0'));
            return value;
        }

        void SkipDisambiguator()
        {
            if (Eat('s')) Base62();
        }

        /// <summary>An identifier: ["u"] length ["_"] bytes (punycode identifiers are kept as they are).</summary>
        string Identifier()
        {
            bool punycode = Eat('u');
            long length = Decimal();
            Eat('_');
            if (length < 0 || _at + length > text.Length) throw new FormatException("identifier past the end");
            var ident = text.Substring(_at, (int)length);
            _at += (int)length;
            return punycode ? "punycode{" + ident + "}" : ident;
        }

        /// <summary>Runs <paramref name="parse"/> at a back-reference's target, then comes back.</summary>
        void Backref(Action parse)
        {
            long target = Base62() + 2; // positions count from just after "_R"
            if (target < 2 || target >= _at) throw new FormatException("back-reference forward");
            int saved = _at;
            _at = (int)target;
            parse();
            _at = saved;
        }

        void Enter()
        {
            if (++_depth > MaxDepth || ++_steps > MaxSteps) throw new FormatException("too deep or too large");
        }

        public void Path(StringBuilder o, bool inValue)
        {
            Enter();
            char tag = Next();
            switch (tag)
            {
                case 'C': // crate root
                    SkipDisambiguator();
                    o.Append(Identifier());
                    break;
                case 'M': // <T> (inherent impl)
                    SkipDisambiguator();
                    SkipPath();
                    o.Append('<');
                    Type(o);
                    o.Append('>');
                    break;
                case 'X': // <T as Trait> (trait impl): the impl's own path, then as a trait definition
                    SkipDisambiguator();
                    SkipPath();
                    goto case 'Y';
                case 'Y': // <T as Trait> (trait definition)
                    o.Append('<');
                    Type(o);
                    o.Append(" as ");
                    Path(o, inValue: false);
                    o.Append('>');
                    break;
                case 'N':
                {
                    char ns = Next();
                    if (!char.IsAsciiLetter(ns)) throw new FormatException("bad namespace");
                    Path(o, inValue);
                    long disambiguator = Peek() == 's' ? (Next() == 's' ? Base62() : 0) : 0;
                    string name = Identifier();
                    if (char.IsAsciiLetterUpper(ns))
                    {
                        // Special namespaces: closures and shims, with their index.
                        string kind = ns switch { 'C' => "closure", 'S' => "shim", _ => ns.ToString() };
                        o.Append("::{").Append(kind);
                        if (name.Length > 0) o.Append(':').Append(name);
                        o.Append('#').Append(disambiguator.ToString(CultureInfo.InvariantCulture)).Append('}');
                    }
                    else if (name.Length > 0) o.Append("::").Append(name);
                    break;
                }
                case 'I': // generic arguments
                    Path(o, inValue);
                    o.Append(inValue ? "::<" : "<");
                    for (int n = 0; !Eat('E'); n++)
                    {
                        if (n > 0) o.Append(", ");
                        GenericArg(o);
                    }
                    o.Append('>');
                    break;
                case 'B':
                    Backref(() => Path(o, inValue));
                    break;
                default:
                    throw new FormatException("bad path");
            }
            _depth--;
        }

        /// <summary>An impl's own path (where the impl block is) is not printed.</summary>
        void SkipPath() => Path(new StringBuilder(), inValue: false);

        void GenericArg(StringBuilder o)
        {
            if (Eat('L')) { Lifetime(o, Base62()); return; }
            if (Eat('K')) { Const(o); return; }
            Type(o);
        }

        static void Lifetime(StringBuilder o, long index) => o.Append(index == 0 ? "'_" : "'" + index.ToString(CultureInfo.InvariantCulture));

        static string? Basic(char c) => c switch
        {
            'a' => "i8", 'b' => "bool", 'c' => "char", 'd' => "f64", 'e' => "str", 'f' => "f32", 'h' => "u8", 'i' => "isize",
            'j' => "usize", 'l' => "i32", 'm' => "u32", 'n' => "i128", 'o' => "u128", 's' => "i16", 't' => "u16", 'u' => "()",
            'v' => "...", 'x' => "i64", 'y' => "u64", 'z' => "!", 'p' => "_",
            _ => null,
        };

        void Type(StringBuilder o)
        {
            Enter();
            char c = Peek();
            if (Basic(c) is { } basic) { _at++; o.Append(basic); _depth--; return; }
            switch (c)
            {
                case 'A':
                    _at++;
                    o.Append('[');
                    Type(o);
                    o.Append("; ");
                    Const(o);
                    o.Append(']');
                    break;
                case 'S':
                    _at++;
                    o.Append('[');
                    Type(o);
                    o.Append(']');
                    break;
                case 'T':
                {
                    _at++;
                    o.Append('(');
                    int n = 0;
                    for (; !Eat('E'); n++)
                    {
                        if (n > 0) o.Append(", ");
                        Type(o);
                    }
                    if (n == 1) o.Append(',');
                    o.Append(')');
                    break;
                }
                case 'R' or 'Q':
                    _at++;
                    o.Append(c == 'R' ? "&" : "&mut ");
                    if (Eat('L'))
                    {
                        long lifetime = Base62();
                        if (lifetime != 0) { Lifetime(o, lifetime); o.Append(' '); }
                    }
                    Type(o);
                    break;
                case 'P' or 'O':
                    _at++;
                    o.Append(c == 'P' ? "*const " : "*mut ");
                    Type(o);
                    break;
                case 'F':
                    _at++;
                    FnSig(o);
                    break;
                case 'D':
                    _at++;
                    DynBounds(o);
                    if (!Eat('L')) throw new FormatException("dyn without lifetime");
                    Base62();
                    break;
                case 'B':
                    _at++;
                    Backref(() => Type(o));
                    break;
                default:
                    Path(o, inValue: false);
                    break;
            }
            _depth--;
        }

        void Binder()
        {
            if (Eat('G')) Base62();
        }

        void FnSig(StringBuilder o)
        {
            Binder();
            if (Eat('U')) o.Append("unsafe ");
            if (Eat('K'))
            {
                o.Append("extern \"");
                if (Eat('C')) o.Append('C');
                else o.Append(Identifier().Replace('_', '-'));
                o.Append("\" ");
            }
            o.Append("fn(");
            for (int n = 0; !Eat('E'); n++)
            {
                if (n > 0) o.Append(", ");
                Type(o);
            }
            o.Append(')');
            if (Peek() == 'u') _at++;
            else
            {
                o.Append(" -> ");
                Type(o);
            }
        }

        void DynBounds(StringBuilder o)
        {
            Binder();
            o.Append("dyn ");
            for (int n = 0; !Eat('E'); n++)
            {
                if (n > 0) o.Append(" + ");
                Path(o, inValue: false);
                while (Eat('p'))
                {
                    o.Append(' ').Append(Identifier()).Append(" = ");
                    Type(o);
                }
            }
        }

        void Const(StringBuilder o)
        {
            if (Eat('p')) { o.Append('_'); return; }
            if (Eat('B')) { Backref(() => Const(o)); return; }
            char type = Next();
            bool negative = Eat('n');
            int from = _at;
            while (Peek() != '_') Next();
            var hex = text[from.._at];
            _at++;
            if (type == 'b') { o.Append(hex == "1" ? "true" : "false"); return; }
            if (type == 'c' && ulong.TryParse(hex, NumberStyles.HexNumber, null, out ulong code) && code < 0x110000)
            {
                o.Append('\'').Append(char.ConvertFromUtf32((int)code)).Append('\'');
                return;
            }
            o.Append(negative ? "-" : "");
            o.Append(hex.Length == 0 ? "0" : ulong.TryParse(hex, NumberStyles.HexNumber, null, out ulong value) ? value.ToString(CultureInfo.InvariantCulture)
                : "0x" + hex);
        }
    }
}
