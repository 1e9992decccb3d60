// Progress display for long CLI work (writing a synthetic 7B model, downloading a model): a redrawn bar with bytes,
// rate and time left when stderr is a terminal; plain periodic lines when it is redirected (CI logs, pipes).

using System.Diagnostics;

namespace Sirocco.Cli;

/// <summary>Reports byte progress on stderr. Thread-safe; throttled so reporting never slows the work.</summary>
internal sealed class ConsoleProgress
{
    private readonly string _label;
    private readonly bool _isTerminal;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly TextWriter _out;
    private readonly Lock _lock = new();
    private readonly long _startBytes;
    private long _lastDrawMs = -1_000_000;
    private int _lastWidth;
    private bool _midLine;
    private bool _finishedDrawn;

    /// <param name="startBytes">Bytes already done before this run (a resumed download): left out of the rate.</param>
    public ConsoleProgress(string label, TextWriter? output = null, bool? isTerminal = null, long startBytes = 0)
    {
        _label = label;
        _out = output ?? Console.Error;
        _isTerminal = isTerminal ?? !Console.IsErrorRedirected;
        _startBytes = startBytes;
    }

    /// <summary>Ends a bar drawn on a terminal but not finished, so that another line can be written below it.</summary>
    public void EndLine()
    {
        lock (_lock)
        {
            if (_midLine)
            {
                _out.WriteLine();
                _midLine = false;
                _lastWidth = 0;
            }
        }
    }

    /// <summary>Shows that <paramref name="done"/> of <paramref name="total"/> bytes are complete.</summary>
    public void Report(long done, long total, string? detail = null)
    {
        long now = _clock.ElapsedMilliseconds;
        lock (_lock)
        {
            bool finished = done >= total;
            long interval = _isTerminal ? 100 : 5000;
            if ((!finished && now - _lastDrawMs < interval) || (finished && _finishedDrawn))
            {
                return;
            }
            _finishedDrawn = finished;
            _lastDrawMs = now;
            string line = Format(done, total, now / 1000.0, detail);
            if (_isTerminal)
            {
                string padded = line.PadRight(_lastWidth);
                _lastWidth = line.Length;
                _out.Write("\r" + padded);
                _midLine = !finished;
                if (finished)
                {
                    _out.WriteLine();
                }
            }
            else
            {
                _out.WriteLine(line);
            }
            _out.Flush();
        }
    }

    internal string Format(long done, long total, double seconds, string? detail)
    {
        double fraction = total <= 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        double rate = seconds > 0 ? Math.Max(0, done - _startBytes) / seconds : 0;
        // Under a second in, the rate says little: no estimate yet.
        string eta = done >= total ? FormatDuration(seconds) : rate > 0 && seconds >= 1 ? FormatDuration((total - done) / rate) : "--:--";
        const int barWidth = 24;
        int filled = (int)(fraction * barWidth);
        string bar = _isTerminal ? "[" + new string('#', filled) + new string('.', barWidth - filled) + "] " : "";
        string tail = detail is null ? "" : "  " + detail;
        string timeLabel = done >= total ? "took" : "left";
        return $"{_label} {bar}{fraction * 100,5:0.0}%  {FormatBytes(done)} / {FormatBytes(total)}  {FormatBytes((long)rate)}/s  {timeLabel} {eta}{tail}";
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.00} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.0} KiB",
        _ => $"{bytes} B",
    };

    private static string FormatDuration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}:{t.Minutes:00}:{t.Seconds:00}" : $"{t.Minutes}:{t.Seconds:00}";
    }
}
