// Package pipelinebench measures a call through composed resilience
// policies, cairn's resilience.Pipeline against failsafe-go's executor with
// the same policies in the same order. It has no API; run it with
// bench/run.sh Pipeline.
package pipelinebench
