using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using TextPoke.Checks;
using TextPoke.Emulation;

namespace TextPoke.Cli;

// The JSON contract of every command (docs/json.md), one record per object. Property names are camelCase, enum values
// kebab-case; every property is always written (null when absent). JsonModelTests checks docs/json.md against these
// records, so a field cannot be added or renamed here without the document following.

public sealed record SymbolsJson(string Source, string Description, int Count, IReadOnlyList<string> Notes);

public sealed record ImageJson(string Path, string Kind, string Description, string? Banner, string? Module, SymbolsJson Symbols);

public sealed record FindingJson(
    string Table, string Rule, Severity Severity, string Title, string? Address, string? Location, string? Key, string? KeyAddress,
    IReadOnlyList<string> KernelLines, string Explanation, string? ActualBytes, string? ExpectedBytes, int? Size, int? Type);

public sealed record TableJson(
    string Name, TableStatus Status, bool Present, string? Start, string? Stop, string? BoundsFrom, string? Section, string? Layout, string? Kernels,
    string? LayoutEvidence, string? NotChecked, IReadOnlyDictionary<string, int>? Stats, IReadOnlyList<FindingJson> Findings);

public sealed record CheckJson(
    ImageJson Image, IReadOnlyList<TableJson> Tables, IReadOnlyList<FindingJson> ModuleFindings, int Findings, CheckVerdict Result,
    IReadOnlyList<string> NotChecked, bool Clean);

public sealed record KeyJson(
    string Name, string? Address, bool? InitialValue, bool External, string? Section, int Sites, int Nop, int Jmp, int Other, int Broken);

public sealed record KeysJson(ImageJson Image, string? NotChecked, IReadOnlyList<KeyJson> Keys);

public sealed record SiteJson(
    string Address, string Location, string? Function, int? Size, SiteState State, string? Expected, string Target, string TargetLocation,
    string Key, string? KeyAddress, string Branch, bool NopMark, bool InitText);

public sealed record SitesJson(ImageJson Image, IReadOnlyList<SiteJson> Sites);

public sealed record TableSiteJson(string Address, string Location, string State, string? Target, string? TargetLocation, string? Note);

public sealed record TableSitesJson(ImageJson Image, string Table, string? Layout, IReadOnlyList<TableSiteJson> Sites);

public sealed record CpuJson(string Spec, bool Uniprocessor, IReadOnlyList<string> Features, string NamesFrom);

public sealed record BootStepJson(string Name, string Function, int Sites, int Rewritten, string? Skipped);

public sealed record BootEventJson(string Kind, string Step, string? Address, string? Location, IReadOnlyList<string> Lines, string Explanation);

public sealed record BootPatchJson(string Step, string Address, string Location, string Old, string New, string? Key);

public sealed record BootSimulationJson(
    ImageJson Image, CpuJson Cpu, string? Era, string Nops, IReadOnlyList<BootStepJson> Steps, IReadOnlyList<BootEventJson> Events,
    IReadOnlyList<BootPatchJson> Patches, int Bugs, int Warnings, bool Halted, string? Emitted);

public sealed record SimulationEventJson(
    EventKind Kind, string Operation, string? Key, string? Site, string? Location, IReadOnlyList<string> Lines, IReadOnlyList<string> CallPath,
    string? Detail);

public sealed record KeyCallerJson(string Function, string Location, bool InitText);

public sealed record KeyUserJson(
    string Function, string Address, string Location, string? Operation, bool Flips, bool InitText, bool RunsAtBoot, IReadOnlyList<string>? BootPath,
    string? Through, IReadOnlyList<KeyCallerJson> Callers);

public sealed record KeyUsersJson(string Key, string KeyAddress, IReadOnlyList<KeyUserJson> Users);

public sealed record SimulationJson(
    ImageJson Image, string Layout, string Kernels, bool ModernRefcount, string SystemState, string Scenario, IReadOnlyList<SimulationEventJson> Events,
    int Bugs, int Warnings, bool Halted, IReadOnlyList<KeyUsersJson> KeyUsers);

public sealed record InlinedJson(string? Function, string? File, int Line);

public sealed record SourceJson(
    string ImageAddress, string? File, int Line, int? Discriminator, string? SourceFunction, IReadOnlyList<InlinedJson> InlinedBy, string? Problem);

public sealed record CodeInstructionJson(int Offset, string Bytes, string Text, bool Faulting, bool Invalid);

public sealed record FrameJson(
    string Function, string? Demangled, ulong Offset, ulong Size, string? Module, bool Reliable, string? Address, string? ImageAddress, string? File,
    int? Line, string? SourceFunction, IReadOnlyList<InlinedJson>? InlinedBy, string? SizeProblem);

public sealed record ReportJson(
    string Title, IReadOnlyList<string> AltTitles, string Type, string Category, bool Corrupted, string? CorruptedReason, bool Panicked,
    string? Frame, string? RawFrame, int StartLine, int EndLine, int? Cpu, int? Pid, string? Comm, string? KernelVersion, string? Rip, string? Code,
    IReadOnlyList<CodeInstructionJson> CodeDisassembly, SourceJson? RipSource, IReadOnlyList<FrameJson> Frames, IReadOnlyList<string> Explanation);

public sealed record DecodeJson(
    string Log, int Lines, string? Vmlinux, string? Modules, bool? DebugInfo, string? KaslrOffset, IReadOnlyList<ReportJson> Reports);

public sealed record BootRunJson(
    string Outcome, string Reason, double Seconds, string Log, int Lines, int? QemuExitCode, string? QemuError, IReadOnlyList<string> Command,
    IReadOnlyList<ReportJson> Reports, VerifyJson? Verify = null, string? VerifyError = null);

public sealed record BootJson(string Kernel, string Kind, string Accelerator, string? Note, IReadOnlyList<BootRunJson> Boots, int Failed);

public sealed record ModuleResultJson(string Path, string? Name, string? Error, int? Entries, IReadOnlyList<FindingJson> Findings);

public sealed record ModulesJson(string Directory, double Seconds, int Count, int Clean, int Errors, int Findings, IReadOnlyList<ModuleResultJson> Results);

public sealed record DifferingRangeJson(string Address, int Length, string Location, string Verdict, string Mechanism, string Detail, string Live,
    string Expected, IReadOnlyList<string> LiveCode, IReadOnlyList<string> ExpectedCode);

public sealed record MechanismCountJson(string Mechanism, int Ranges);

public sealed record VerifyJson(ImageJson Image, string Memory, string Slide, string Cpu, IReadOnlyList<string> Features, bool Uniprocessor,
    string TextStart, string TextEnd, long BytesCompared, long BytesUnreadable, int DifferingBytes, int Explained, int Inconsistent, int Unexplained,
    IReadOnlyList<MechanismCountJson> ByMechanism,
    IReadOnlyList<string> Notes, IReadOnlyList<DifferingRangeJson> Ranges);

public sealed record ModuleTreeJson(CheckJson? Kernel, ModulesJson Modules);

/// <summary>Source-generated serialization of the JSON contract: no reflection, trim- and AOT-safe.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(VerifyJson))]
[JsonSerializable(typeof(CheckJson))]
[JsonSerializable(typeof(KeysJson))]
[JsonSerializable(typeof(SitesJson))]
[JsonSerializable(typeof(TableSitesJson))]
[JsonSerializable(typeof(BootSimulationJson))]
[JsonSerializable(typeof(SimulationJson))]
[JsonSerializable(typeof(DecodeJson))]
[JsonSerializable(typeof(BootJson))]
[JsonSerializable(typeof(ModuleTreeJson))]
public sealed partial class JsonModelContext : JsonSerializerContext
{
    /// <summary>The options every command writes with: indented, camelCase, kebab-case enums, UTF-8 text left readable.</summary>
    // Built on first use: the generated Default lives in another part of this class, whose static initialisers may run later.
    static readonly Lazy<JsonSerializerOptions> LazyOptions = new(() => new JsonSerializerOptions
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters =
        {
            new JsonStringEnumConverter<Severity>(JsonNamingPolicy.KebabCaseLower),
            new JsonStringEnumConverter<TableStatus>(JsonNamingPolicy.KebabCaseLower),
            new JsonStringEnumConverter<CheckVerdict>(JsonNamingPolicy.KebabCaseLower),
            new JsonStringEnumConverter<SiteState>(JsonNamingPolicy.KebabCaseLower),
            new JsonStringEnumConverter<EventKind>(JsonNamingPolicy.KebabCaseLower),
        },
        TypeInfoResolver = Default,
    });

    public static JsonSerializerOptions WriteOptions => LazyOptions.Value;

    /// <summary>Serializes one document of the contract.</summary>
    public static string Serialize<T>(T document) => JsonSerializer.Serialize(document,
        (System.Text.Json.Serialization.Metadata.JsonTypeInfo<T>)WriteOptions.GetTypeInfo(typeof(T)));
}
