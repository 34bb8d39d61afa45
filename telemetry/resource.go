package telemetry

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// newResource describes this service instance. Precedence, lowest first:
// the defaults (unknown_service:<exe>, a random service.instance.id), the
// detected telemetry.sdk, host, OS and process attributes,
// OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, cfg.ResourceAttributes,
// and the Service* fields.
//
// Detectors that may fail in a minimal container (process owner, container
// id) or leak secrets (command line) are not used.
func newResource(ctx context.Context, cfg *Config) (*resource.Resource, error) {
	if err := parseHeaders(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), map[string]string{}); err != nil {
		return nil, fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	exe := "go"
	if p, err := os.Executable(); err == nil {
		exe = filepath.Base(p)
	}
	defaults := []attribute.KeyValue{
		semconv.ServiceName("unknown_service:" + exe),
		semconv.ServiceInstanceID(newUUID()),
	}
	var explicit []attribute.KeyValue
	if cfg.ServiceName != "" {
		explicit = append(explicit, semconv.ServiceName(cfg.ServiceName))
	}
	if cfg.ServiceVersion != "" {
		explicit = append(explicit, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	if cfg.ServiceInstanceID != "" {
		explicit = append(explicit, semconv.ServiceInstanceID(cfg.ServiceInstanceID))
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithAttributes(defaults...),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithOSType(),
		resource.WithProcessPID(),
		resource.WithProcessExecutableName(),
		resource.WithProcessExecutablePath(),
		resource.WithProcessRuntimeName(),
		resource.WithProcessRuntimeVersion(),
		resource.WithProcessRuntimeDescription(),
		resource.WithFromEnv(),
		resource.WithAttributes(cfg.ResourceAttributes...),
		resource.WithAttributes(explicit...),
	)
	if errors.Is(err, resource.ErrPartialResource) {
		// A detector could not read everything (say, the host name); keep
		// what was detected rather than fail the service.
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
