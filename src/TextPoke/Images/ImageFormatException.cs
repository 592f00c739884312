namespace TextPoke.Images;

/// <summary>Bad input: names the file, what was wrong and, where it helps, the offset.</summary>
public sealed class ImageFormatException : Exception
{
    public string File { get; }

    public ImageFormatException(string file, string message)
        : base($"{file}: {message}") => File = file;

    public ImageFormatException(string file, long offset, string message)
        : base($"{file}: at offset 0x{offset:x}: {message}") => File = file;
}
