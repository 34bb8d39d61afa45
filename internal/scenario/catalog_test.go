package scenario

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
)

func TestCatalogIsValid(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Catalog() {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		if seen[s.Name] {
			t.Errorf("%s: listed twice", s.Name)
		}
		seen[s.Name] = true
		if got, ok := Lookup(s.Name); !ok || got.Name != s.Name {
			t.Errorf("Lookup(%q) = %v, %v", s.Name, got, ok)
		}
		if len(s.Assertions) == 0 || len(s.Timeline) == 0 {
			t.Errorf("%s: %d events, %d assertions; want some of each", s.Name, len(s.Timeline), len(s.Assertions))
		}
	}
	for _, name := range []string{"payment-outage", "payment-latency", "inventory-flaky", "shipping-down", "orchestrator-crash", "broker-outage"} {
		if !seen[name] {
			t.Errorf("the catalog lacks %s", name)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error(`Lookup("nope") found something`)
	}
	if first, again := Catalog(), Catalog(); first[0] == again[0] {
		t.Error("Catalog returns shared values")
	}
}

// TestCatalogPassesOnAHealthyShop runs every scenario against the fake
// shop, which reacts to the faults as the real one should: every
// assertion passes, and the env is restored.
func TestCatalogPassesOnAHealthyShop(t *testing.T) {
	for _, s := range Catalog() {
		t.Run(s.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := newFakeEnv()
				newShop(env, true)
				rep, err := Run(t.Context(), env, s, Params{}, Options{})
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if !rep.Passed() {
					var b bytes.Buffer
					_ = rep.WriteText(&b)
					t.Errorf("the scenario failed on a healthy shop:\n%s", b.String())
				}
				if !env.healthy() {
					t.Errorf("the env is not restored: %v", env.callList())
				}
			})
		})
	}
}

// TestCatalogCatchesBrokenShops: the assertions are not vacuous.
func TestCatalogCatchesBrokenShops(t *testing.T) {
	for _, tc := range []struct {
		name     string
		scenario *Scenario
		breaker  bool
		break_   func(e *fakeEnv, s *shop)
		failed   []string
	}{
		{name: "no breaker", scenario: PaymentOutage(), failed: []string{"breaker payment-provider opens"}},
		{name: "sagas left running", scenario: ShippingDown(), breaker: true,
			break_: func(e *fakeEnv, _ *shop) { e.sagas.Running = 3 }, failed: []string{"no saga unfinished"}},
		{name: "double charges", scenario: OrchestratorCrash(), breaker: true,
			break_: func(e *fakeEnv, _ *shop) { e.doubles = 1 }, failed: []string{"no double charge"}},
		{name: "events lost", scenario: BrokerOutage(), breaker: true,
			break_: func(_ *fakeEnv, s *shop) { s.loseBacklog = true }, failed: []string{"no event lost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				env := newFakeEnv()
				sh := newShop(env, tc.breaker)
				if tc.break_ != nil {
					tc.break_(env, sh)
				}
				rep, err := Run(t.Context(), env, tc.scenario, Params{}, Options{})
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				var failed []string
				for _, a := range rep.Assertions {
					if a.State == Failed {
						failed = append(failed, a.Name)
					}
				}
				if strings.Join(failed, ", ") != strings.Join(tc.failed, ", ") || rep.Passed() {
					t.Errorf("failed = %q, Passed() = %v; want %q, false", failed, rep.Passed(), tc.failed)
				}
			})
		})
	}
}

func TestWriteList(t *testing.T) {
	var b bytes.Buffer
	if err := WriteList(&b, Catalog()[:1]); err != nil {
		t.Fatal(err)
	}
	want := "payment-outage (45s at 20 rps)\n" +
		"  the payment provider fails: the breaker opens, sagas compensate, orders are still taken, and checkouts complete again once it recovers\n" +
		"  --param error_rate=1  (rate) fraction of payment provider calls that fail during the outage\n" +
		"  --param open_within=10s  (duration) how soon after the outage starts the breaker must open\n" +
		"  --param max_edge_errors=0.01  (rate) fraction of orders that may fail at the edge\n" +
		"  --param recover_within=15s  (duration) how soon after the outage sagas must complete again\n"
	if got := b.String(); got != want {
		t.Errorf("WriteList =\n%s\nwant\n%s", got, want)
	}
}
