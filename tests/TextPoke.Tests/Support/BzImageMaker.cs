using System.Buffers.Binary;

namespace TextPoke.Tests.Support;

/// <summary>
/// Wraps a compressed payload in a minimal bzImage: the x86 boot protocol setup header and nothing else. This file depends
/// on nothing else of the tests: the fuzzing harness links it to make its bzImage seeds.
/// </summary>
public static partial class BzImageMaker
{
    public const int SetupSectors = 1;
    public const int PayloadOffset = 0x200;

    public static byte[] Make(byte[] payload)
    {
        int protectedMode = (SetupSectors + 1) * 512;
        var file = new byte[protectedMode + PayloadOffset + payload.Length];
        file[0x1f1] = SetupSectors;
        file[0x1fe] = 0x55;
        file[0x1ff] = 0xaa;
        "HdrS"u8.CopyTo(file.AsSpan(0x202));
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(0x206), 0x020f);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(0x248), PayloadOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(0x24c), (uint)payload.Length);
        payload.CopyTo(file.AsSpan(protectedMode + PayloadOffset));
        return file;
    }
}
