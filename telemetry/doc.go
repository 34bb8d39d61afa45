// Package telemetry sets up OpenTelemetry for one cairn service in one call:
// traces, metrics and logs exported over OTLP (gRPC or HTTP/protobuf) or to
// the console as the standard OTEL_* environment variables and [Config]
// say; a Prometheus exposition of the metrics; Go runtime metrics; an
// [log/slog] logger that writes to the console, an optional rotating file
// and the OpenTelemetry logs pipeline, with trace correlation; HTTP server
// and client instrumentation; and admin endpoints for /metrics, pprof and
// changing the log level at run time.
//
// Nothing is global. [Setup] returns a [Telemetry] that owns its providers,
// so several services can run in one process, each with its own
// service.name; [Telemetry.SetGlobal] installs one of them as the
// OpenTelemetry and slog defaults when a program wants that.
//
// A typical main:
//
//	tel, err := telemetry.Setup(ctx, telemetry.Config{ServiceName: "order"})
//	if err != nil {
//		return err
//	}
//	defer func() {
//		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
//		defer cancel()
//		err = errors.Join(err, tel.Shutdown(ctx))
//	}()
//	ln, err := net.Listen("tcp", telemetry.DefaultAdminAddr)
//	if err != nil {
//		return err
//	}
//	go tel.ServeAdmin(ctx, ln)
//	srv := &http.Server{Handler: tel.Handler(mux, "order")}
//	client := &http.Client{Transport: tel.Transport(nil)}
//	tel.Logger().InfoContext(ctx, "started")
package telemetry
