// Package logfilebench measures what writing one log record to a rotating
// file costs the caller: straight into a lumberjack.Logger, and through
// telemetry.AsyncWriter in front of it, as telemetry.Config.LogFile does. It
// has no API; run it with bench/run.sh LogFileWrite.
//
// It is a package of its own because lumberjack v2.2.1 starts a goroutine
// per Logger that never exits (natefinch/lumberjack#56), which its TestMain
// tells goleak to ignore.
package logfilebench
