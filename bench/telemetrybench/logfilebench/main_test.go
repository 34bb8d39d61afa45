package logfilebench

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// lumberjack v2.2.1 starts one mill goroutine per Logger on its
		// first write and never stops it (natefinch/lumberjack#56).
		goleak.IgnoreAnyFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}
