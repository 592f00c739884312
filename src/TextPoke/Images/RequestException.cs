namespace TextPoke.Images;

/// <summary>
/// A request that cannot be carried out as asked (an unknown symbol or key, a location outside the image, options that
/// contradict each other): the caller's mistake, not bad input and not a bug. Front ends report its message in one line.
/// </summary>
public class RequestException(string message) : Exception(message);
