// The typed values of GGUF metadata (scalars, strings and arrays, arrays possibly nested), as read by GgufFile and
// written by GgufWriter. Arrays of numbers are kept as typed CLR arrays so the 32000-entry tokenizer tables stay compact.

namespace Sirocco.Engine.Formats.Gguf;

/// <summary>GGUF metadata value types, by on-disk id (gguf.md, "gguf_metadata_value_type").</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>One metadata value. Scalars are boxed in <see cref="Value"/>; an array holds a typed CLR array
/// (byte[], sbyte[], ushort[], short[], uint[], int[], float[], bool[], string[], ulong[], long[], double[]) or, for
/// arrays of arrays, <see cref="GgufValue"/>[].</summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, GgufValueType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    /// <summary>The value's type; <see cref="GgufValueType.Array"/> for arrays.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the type of the elements; otherwise the same as <see cref="Type"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The boxed scalar, the string, or the typed array.</summary>
    public object Value { get; }

    /// <summary>Number of elements of an array value; 1 for a scalar.</summary>
    public int Count => Value is Array a ? a.Length : 1;

    public static GgufValue Of(byte v) => new(GgufValueType.UInt8, GgufValueType.UInt8, v);

    public static GgufValue Of(sbyte v) => new(GgufValueType.Int8, GgufValueType.Int8, v);

    public static GgufValue Of(ushort v) => new(GgufValueType.UInt16, GgufValueType.UInt16, v);

    public static GgufValue Of(short v) => new(GgufValueType.Int16, GgufValueType.Int16, v);

    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, GgufValueType.UInt32, v);

    public static GgufValue Of(int v) => new(GgufValueType.Int32, GgufValueType.Int32, v);

    public static GgufValue Of(float v) => new(GgufValueType.Float32, GgufValueType.Float32, v);

    public static GgufValue Of(bool v) => new(GgufValueType.Bool, GgufValueType.Bool, v);

    public static GgufValue Of(string v) => new(GgufValueType.String, GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));

    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, GgufValueType.UInt64, v);

    public static GgufValue Of(long v) => new(GgufValueType.Int64, GgufValueType.Int64, v);

    public static GgufValue Of(double v) => new(GgufValueType.Float64, GgufValueType.Float64, v);

    /// <summary>An array of scalars or strings; the element type follows from the CLR array type.</summary>
    public static GgufValue Array<T>(T[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new GgufValue(GgufValueType.Array, ElementTypeOf(typeof(T)), values);
    }

    /// <summary>An array of arrays (GGUF allows nesting); all inner values must be arrays.</summary>
    public static GgufValue ArrayOfArrays(GgufValue[] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (var v in values)
        {
            if (v.Type != GgufValueType.Array)
            {
                throw new ArgumentException("every element of an array of arrays must itself be an array", nameof(values));
            }
        }
        return new GgufValue(GgufValueType.Array, GgufValueType.Array, values);
    }

    /// <summary>Builds an array value from a typed CLR array whose element type is already known (used by the reader).</summary>
    internal static GgufValue FromArray(GgufValueType elementType, Array values) => new(GgufValueType.Array, elementType, values);

    internal static GgufValueType ElementTypeOf(Type t) =>
        t == typeof(byte) ? GgufValueType.UInt8
        : t == typeof(sbyte) ? GgufValueType.Int8
        : t == typeof(ushort) ? GgufValueType.UInt16
        : t == typeof(short) ? GgufValueType.Int16
        : t == typeof(uint) ? GgufValueType.UInt32
        : t == typeof(int) ? GgufValueType.Int32
        : t == typeof(float) ? GgufValueType.Float32
        : t == typeof(bool) ? GgufValueType.Bool
        : t == typeof(string) ? GgufValueType.String
        : t == typeof(ulong) ? GgufValueType.UInt64
        : t == typeof(long) ? GgufValueType.Int64
        : t == typeof(double) ? GgufValueType.Float64
        : t == typeof(GgufValue) ? GgufValueType.Array
        : throw new ArgumentException($"{t.Name} is not a GGUF element type");

    /// <summary>The value as an unsigned or signed integer of any width, or null when it is not an integer
    /// (or a negative value is asked for as unsigned).</summary>
    public long? AsInteger() => Value switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        ulong v when v <= long.MaxValue => (long)v,
        long v => v,
        _ => null,
    };

    /// <summary>The value as a float when it is a Float32 or Float64 scalar; null otherwise.</summary>
    public double? AsFloat() => Value switch
    {
        float f => f,
        double d => d,
        _ => null,
    };

    /// <summary>Structural equality (type, element type and every element, recursively). Floats compare by bits.</summary>
    public bool ContentEquals(GgufValue other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Type != other.Type || ElementType != other.ElementType)
        {
            return false;
        }
        return (Value, other.Value) switch
        {
            (GgufValue[] a, GgufValue[] b) => a.Length == b.Length && a.Zip(b).All(p => p.First.ContentEquals(p.Second)),
            (float[] a, float[] b) => BitsEqual(a, b),
            (double[] a, double[] b) => a.Select(BitConverter.DoubleToInt64Bits).SequenceEqual(b.Select(BitConverter.DoubleToInt64Bits)),
            (Array a, Array b) => a.Length == b.Length && a.Cast<object>().SequenceEqual(b.Cast<object>()),
            (float a, float b) => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b),
            (double a, double b) => BitConverter.DoubleToInt64Bits(a) == BitConverter.DoubleToInt64Bits(b),
            var (a, b) => a.Equals(b),
        };
    }

    private static bool BitsEqual(float[] a, float[] b) =>
        a.Length == b.Length && a.Select(BitConverter.SingleToInt32Bits).SequenceEqual(b.Select(BitConverter.SingleToInt32Bits));

    /// <summary>A short rendering for `sirocco inspect` and error messages (arrays summarised).</summary>
    public override string ToString() => Value switch
    {
        string s => s.Length > 80 ? $"\"{s[..77]}...\"" : $"\"{s}\"",
        GgufValue[] a => $"[{a.Length} arrays]",
        Array a => $"[{a.Length} × {ElementType}]",
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
