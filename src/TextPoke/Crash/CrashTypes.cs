namespace TextPoke.Crash;

/// <summary>
/// The type of a crash from its title, as a table of title prefixes (bug trackers' taxonomy, e.g. syzkaller's
/// crash.TitleToType): the first matching prefix wins, so more specific prefixes come first.
/// </summary>
public static class CrashTypes
{
    public static readonly IReadOnlyList<(string Prefix, string Type)> Table =
    [
        ("KASAN: use-after-free Read", "KASAN-USE-AFTER-FREE-READ"),
        ("KASAN: use-after-free Write", "KASAN-USE-AFTER-FREE-WRITE"),
        ("KASAN: null-ptr-deref Read", "KASAN-NULL-POINTER-DEREFERENCE-READ"),
        ("KASAN: null-ptr-deref Write", "KASAN-NULL-POINTER-DEREFERENCE-WRITE"),
        ("KASAN: slab-use-after-free Read", "KASAN-USE-AFTER-FREE-READ"),
        ("KASAN: slab-use-after-free Write", "KASAN-USE-AFTER-FREE-WRITE"),
        // Old headers without the access line ("KASAN: use-after-free in FUNC at addr ADDR") count as reads, like any
        // KASAN title without a direction.
        ("KASAN: use-after-free", "KASAN-USE-AFTER-FREE-READ"),
        ("KASAN: slab-use-after-free", "KASAN-USE-AFTER-FREE-READ"),
        ("KASAN: slab-out-of-bounds Read", "KASAN-READ"),
        ("KASAN: slab-out-of-bounds Write", "KASAN-WRITE"),
        ("KASAN: invalid-free", "KASAN-INVALID-FREE"),
        ("KASAN: double-free", "KASAN-DOUBLE-FREE"),
        ("KASAN: ", "KASAN-?"),
        ("KFENCE: invalid free", "KFENCE-INVALID-FREE"),
        ("KFENCE: memory corruption", "KFENCE-MEMORY-CORRUPTION"),
        ("KFENCE: use-after-free read", "KFENCE-USE-AFTER-FREE-READ"),
        ("KFENCE: use-after-free write", "KFENCE-USE-AFTER-FREE-WRITE"),
        ("KFENCE: out-of-bounds read", "KFENCE-READ"),
        ("KFENCE: out-of-bounds write", "KFENCE-WRITE"),
        ("KFENCE: invalid read", "KFENCE-READ"),
        ("KFENCE: invalid write", "KFENCE-WRITE"),
        ("KMSAN: uninit-value", "KMSAN-UNINIT-VALUE"),
        ("KMSAN: kernel-infoleak", "KMSAN-INFO-LEAK"),
        ("KMSAN: kernel-usb-infoleak", "KMSAN-INFO-LEAK"),
        ("KCSAN: data-race", "KCSAN-DATARACE"),
        ("INFO: rcu detected stall", "HANG"),
        ("INFO: task hung", "HANG"),
        ("INFO: task can't die", "HANG"),
        ("BUG: lock held when returning to user space", ""),
        ("WARNING: held lock freed", "LOCKDEP"),
        ("BUG: held lock freed", "LOCKDEP"),
        ("BUG: still has locks held", "LOCKDEP"),
        ("BUG: rwlock ", "LOCKDEP"),
        ("WARNING: kernel stack regs has bad", ""),
        ("WARNING: kernel stack frame pointer has bad value", ""),
        ("WARNING: still has locks held", "LOCKDEP"),
        ("BUG: spinlock ", "LOCKDEP"),
        ("BUG: using smp_processor_id() in preemptible code", "LOCKDEP"),
        ("BUG: using __this_cpu_", "LOCKDEP"),
        ("BUG: soft lockup", "HANG"),
        ("watchdog detected hard LOCKUP", "HANG"),
        ("possible deadlock", "LOCKDEP"),
        ("BUG: spinlock lockup suspected", "LOCKDEP"),
        ("INFO: suspicious RCU usage", ""),
        ("inconsistent lock state", "LOCKDEP"),
        ("WARNING: locking bug", "LOCKDEP"),
        ("WARNING: bad unlock balance", "LOCKDEP"),
        ("BUG: bad unlock balance", "LOCKDEP"),
        ("WARNING: nested lock was not taken", "LOCKDEP"),
        ("WARNING: suspicious RCU usage in ", "LOCKDEP"),
        ("BUG: using __this_cpu_read() in preemptible code", "LOCKDEP"),
        ("WARNING: refcount bug", "REFCOUNT_WARNING"),
        ("WARNING", "WARNING"),
        ("BUG: unable to handle kernel NULL pointer dereference", "NULL-POINTER-DEREFERENCE"),
        ("BUG: unable to handle kernel paging request", "MEMORY_SAFETY_BUG"),
        ("BUG: corrupted list", "MEMORY_SAFETY_BUG"),
        ("BUG: scheduling while atomic", "ATOMIC_SLEEP"),
        ("BUG: sleeping function called from invalid context", "ATOMIC_SLEEP"),
        ("memory leak", "LEAK"),
        ("UBSAN: array-index-out-of-bounds", "MEMORY_SAFETY_UBSAN"),
        ("UBSAN: ", "UBSAN"),
        ("Internal error", "DoS"),
        ("general protection fault", "DoS"),
        ("PANIC: double fault", "DoS"),
        ("BUG: Object already free", "DoS"),
        ("divide error", "DoS"),
        ("stack segment fault", "DoS"),
        ("Unhandled fault", "DoS"),
        ("kernel panic: ", "DoS"),
        // From syzkaller's title-to-type table: the remaining denial-of-service titles and the fuzzer's own failures.
        ("Alignment trap in", "DoS"),
        ("VFS: Busy inodes after unmount (use-after-free)", "DoS"),
        ("VFS: Close: file count is zero (use-after-free)", "DoS"),
        ("go runtime error", "DoS"),
        ("invalid opcode in", "DoS"),
        ("kernel stack overflow", "DoS"),
        ("panic:", "DoS"),
        ("trusty:", "DoS"),
        ("unregister_netdevice: waiting for DEV to become free", "DoS"),
        ("SYZFAIL", "SYZ_FAILURE"),
        ("SYZFATAL:", "SYZ_FAILURE"),
        ("unexpected kernel reboot", "REBOOT"),
        ("kernel BUG", "BUG"),
        ("BUG: bad usercopy", "BUG"),
    ];

    public static string Of(string title)
    {
        foreach (var (prefix, type) in Table)
            if (title.StartsWith(prefix, StringComparison.Ordinal))
                return type == "KASAN-?" ? (title.Contains(" Write", StringComparison.Ordinal) ? "KASAN-WRITE" : "KASAN-READ") : type;
        return "";
    }
}
