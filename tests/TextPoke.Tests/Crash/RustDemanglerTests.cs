using TextPoke.Crash;

namespace TextPoke.Tests.Crash;

/// <summary>
/// Rust v0 symbols as a kernel prints them (from a real Rust binder panic in syzkaller's corpus), against the names
/// rustc-demangle gives without crate hashes; malformed symbols are left alone.
/// </summary>
public class RustDemanglerTests
{
    [Theory]
    [InlineData("_RNvCscSpY9Juk0HT_7___rustc17rust_begin_unwind", "__rustc::rust_begin_unwind")]
    [InlineData("_RNvNtNtCs9jEwPDbx20M_4core9panicking11panic_const24panic_const_sub_overflow", "core::panicking::panic_const::panic_const_sub_overflow")]
    [InlineData("_RNvMs3_NtCshgDM7dBCdno_11rust_binder7processNtB5_7Process10update_ref", "<rust_binder::process::Process>::update_ref")]
    [InlineData("_RNvCshgDM7dBCdno_11rust_binder26rust_binder_unlocked_ioctl", "rust_binder::rust_binder_unlocked_ioctl")]
    [InlineData("_RNvXs1b_NtCs9jEwPDbx20M_4core3fmtRNtNtNtB8_5panic10panic_info9PanicInfoNtB6_7Display3fmtCs43vyB533jt3_6kernel",
        "<&core::panic::panic_info::PanicInfo as core::fmt::Display>::fmt")]
    [InlineData("__cfi__RNvMs0_NtCshgDM7dBCdno_11rust_binder4nodeNtB5_4Node22update_refcount_locked",
        "__cfi_<rust_binder::node::Node>::update_refcount_locked")]
    // Generic arguments, a closure, tuples, references, arrays and function pointers.
    [InlineData("_RINvNtCs1234_4core3ptr13drop_in_placeNtCs5678_6kernel5ErrorEB4_", "core::ptr::drop_in_place::<kernel::Error>")]
    [InlineData("_RNCNvCs1234_7mycrate4main0B3_", "mycrate::main::{closure#0}")]
    [InlineData("_RINvCs1_1a1fTmhEEB2_", "a::f::<(u32, u8)>")]
    [InlineData("_RINvCs1_1a1fQAhj4_EB2_", "a::f::<&mut [u8; 4]>")]
    [InlineData("_RINvCs1_1a1fFUKCmEuEB2_", "a::f::<unsafe extern \"C\" fn(u32)>")]
    public void Demangle_GivesTheRustPath(string mangled, string expected) => Assert.Equal(expected, RustDemangler.Demangle(mangled));

    [Theory]
    [InlineData("_R")]
    [InlineData("_RX")]
    [InlineData("_RNvB99_3abc")]            // back-reference past the symbol
    [InlineData("_RNvCs_9abc")]             // identifier longer than the symbol
    [InlineData("_R0NvCs_3abc")]            // unknown encoding version
    [InlineData("swap_writepage")]          // not Rust
    [InlineData("_ZN4core9panicking5panic17h0123456789abcdefE")] // legacy mangling is not v0
    public void Demangle_MalformedOrOther_IsNull(string symbol) => Assert.Null(RustDemangler.Demangle(symbol));

    [Fact]
    public void Demangle_DeepNesting_IsRefusedNotOverflowed()
    {
        // A hostile symbol nesting references ten thousand deep must not blow the stack.
        var symbol = "_RINvCs1_1a1f" + new string('R', 10_000) + "mEB2_";
        Assert.Null(RustDemangler.Demangle(symbol));
    }

    [Fact]
    public void Demangle_BackReferencesThatDoubleEachTime_AreRefusedNotExpanded()
    {
        // Each tuple holds the previous one twice: 2^60 leaves if expanded.
        var sb = new System.Text.StringBuilder("_RINvCs1_1a1fTmmE");
        var positions = new List<int> { "_RINvCs1_1a1f".Length - 2 };
        for (int i = 0; i < 60; i++)
        {
            int back = positions[^1];
            positions.Add(sb.Length - 2);
            string refTo = "B" + Base62(back) + "_";
            sb.Append('T').Append(refTo).Append(refTo).Append('E');
        }
        sb.Append("EB2_");
        Assert.Null(RustDemangler.Demangle(sb.ToString()));
    }

    /// <summary>A back-reference's base-62 digits for position <paramref name="n"/> (0 is written as nothing).</summary>
    static string Base62(int n)
    {
        if (n == 0) return "";
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        n--;
        var s = "";
        do { s = digits[n % 62] + s; n /= 62; } while (n > 0);
        return s;
    }
}
