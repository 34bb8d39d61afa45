package scenario

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes r for people, in a fixed format the CLI prints: a
// header with the run's settings and parameters, the events, one line per
// assertion (PASS, FAIL or WAIT for pending, its name, when it was
// decided and what was observed), the cleanup, the run's errors and a
// last line "result: PASS" or "result: FAIL" with the counts. It returns
// the first write error.
func (r Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "scenario %s: %s at %g rps, drain %s (%s)\n", r.Scenario, short(r.Duration), r.RPS, short(r.Drain), r.Phase)
	if p := r.Params.String(); p != "" {
		fmt.Fprintf(bw, "params: %s\n", p)
	}
	if len(r.Events) > 0 {
		fmt.Fprintln(bw, "events:")
		for _, e := range r.Events {
			state := "fired"
			switch {
			case e.Error != "":
				state = "FAILED: " + e.Error
			case !e.Fired:
				state = "not fired"
			}
			fmt.Fprintf(bw, "  %-8s %s (%s)\n", short(e.At), e.Name, state)
		}
	}
	width := 0
	for _, a := range r.Assertions {
		width = max(width, len(a.Name))
	}
	fmt.Fprintln(bw, "assertions:")
	var passed, failed, pending int
	for _, a := range r.Assertions {
		label := "WAIT"
		switch a.State {
		case Passed:
			label = "PASS"
			passed++
		case Failed:
			label = "FAIL"
			failed++
		default:
			pending++
		}
		fmt.Fprintf(bw, "  %s  %-*s  %s: %s\n", label, width, a.Name, when(a), oneLine(a.Observed))
	}
	if len(r.Cleanup) > 0 {
		fmt.Fprintf(bw, "cleanup: %s\n", strings.Join(r.Cleanup, "; "))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(bw, "error: %s\n", oneLine(e))
	}
	verdict := "FAIL"
	if r.Passed() {
		verdict = "PASS"
	}
	fmt.Fprintf(bw, "result: %s (%d passed, %d failed, %d pending)\n", verdict, passed, failed, pending)
	return bw.Flush()
}

// when says when a result was decided, in words.
func when(a Result) string {
	since := ""
	if a.After != "" {
		since = fmt.Sprintf(" %q", a.After)
	}
	switch {
	case a.State == Pending:
		return "pending"
	case a.Kind == AtEnd:
		return "at end"
	case a.Kind == Always && a.State == Passed:
		return fmt.Sprintf("always (%d samples)", a.Samples)
	case a.Kind == Always:
		if since != "" {
			return fmt.Sprintf("false %s after%s", short(a.At), since)
		}
		return "false after " + short(a.At)
	case a.State == Passed && since != "":
		return fmt.Sprintf("%s after%s", short(a.At), since)
	case a.State == Passed:
		return "after " + short(a.At)
	case a.Within == 0:
		return "not by the end"
	case since != "":
		return fmt.Sprintf("not within %s of%s", short(a.Within), since)
	}
	return "not within " + short(a.Within)
}

// short formats d to a tenth of a second.
func short(d time.Duration) string {
	return d.Round(100 * time.Millisecond).String()
}

// oneLine replaces line breaks so each item stays on its line.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", " / ")
}
