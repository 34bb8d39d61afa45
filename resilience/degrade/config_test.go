package degrade

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidate(t *testing.T) {
	three := DefaultLevels()
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none for valid
	}{
		{"zero", Config{}, nil},
		{"defaults with features", Config{Features: map[string]int{"recs": 1, "search": 3}}, nil},
		{"explicit", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: 0.4}, {Enter: 2}}, Interval: time.Millisecond, MinDwell: time.Minute}, nil},
		{"exit equals enter", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: 0.5}}}, nil},
		{"negative interval", Config{Interval: -time.Second}, []string{"Interval = -1s: must not be negative"}},
		{"negative dwell", Config{MinDwell: -1}, []string{"MinDwell = -1ns: must not be negative"}},
		{"NaN enter", Config{Levels: []LevelConfig{{Enter: math.NaN()}}}, []string{"Levels[0].Enter = NaN: must be finite and greater than 0"}},
		{"zero enter", Config{Levels: []LevelConfig{{Name: "x"}}}, []string{"Levels[0].Enter = 0: must be finite"}},
		{"negative enter", Config{Levels: []LevelConfig{{Enter: -0.5}}}, []string{"Levels[0].Enter = -0.5"}},
		{"infinite enter", Config{Levels: []LevelConfig{{Enter: math.Inf(1)}}}, []string{"Levels[0].Enter = +Inf"}},
		{"NaN exit", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: math.NaN()}}}, []string{"Levels[0].Exit = NaN: must be finite and not negative"}},
		{"negative exit", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: -0.1}}}, []string{"Levels[0].Exit = -0.1"}},
		{"exit above enter", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: 0.6}}}, []string{"Levels[0].Exit = 0.6: must not exceed Levels[0].Enter (0.5)"}},
		{"enter not increasing", Config{Levels: []LevelConfig{{Enter: 0.8}, {Enter: 0.8}}}, []string{"Levels[1].Enter = 0.8: must be greater than Levels[0].Enter (0.8)"}},
		{"exit decreasing", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: 0.45}, {Enter: 0.9, Exit: 0.4}}}, []string{"Levels[1].Exit = 0.4: must not be below Levels[0].Exit (0.45)"}},
		{"default exit decreasing", Config{Levels: []LevelConfig{{Enter: 0.5, Exit: 0.5}, {Enter: 0.52}}}, []string{"Levels[1].Exit = 0 (default 0.468): must not be below Levels[0].Exit (0.5)"}},
		{"too many levels", Config{Levels: make([]LevelConfig, MaxLevels+1)}, []string{"Levels = 17: must have at most 16 levels"}},
		{"feature level zero", Config{Features: map[string]int{"recs": 0}}, []string{`Features["recs"] = 0: must be a level from 1 to 3`}},
		{"feature level too high", Config{Levels: three[:2], Features: map[string]int{"search": 3}}, []string{`Features["search"] = 3: must be a level from 1 to 2`}},
		{"several", Config{Interval: -1, MinDwell: -1, Features: map[string]int{"x": 9}}, []string{"Interval", "MinDwell", `Features["x"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "degrade: invalid config: ") {
				t.Errorf("Validate() = %v, want the degrade: invalid config: prefix", err)
			}
			if _, nerr := New(tt.cfg); nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("New() = %v, want the Validate error", nerr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	got := Config{Levels: []LevelConfig{{Enter: 0.5}, {Name: "hot", Enter: 1.5, Exit: 1}}}.withDefaults()
	want := Config{
		Name:     DefaultName,
		Levels:   []LevelConfig{{Name: "level 1", Enter: 0.5, Exit: 0.45}, {Name: "hot", Enter: 1.5, Exit: 1}},
		Interval: DefaultInterval,
		MinDwell: DefaultMinDwell,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("withDefaults mismatch (-want +got):\n%s", diff)
	}
	if z := (Config{}).withDefaults(); !cmp.Equal(z.Levels, DefaultLevels()) {
		t.Errorf("zero Config Levels = %v, want DefaultLevels %v", z.Levels, DefaultLevels())
	}
	// withDefaults must not write to the caller's slice.
	levels := []LevelConfig{{Enter: 0.5}}
	_ = Config{Levels: levels}.withDefaults()
	if levels[0].Name != "" || levels[0].Exit != 0 {
		t.Errorf("withDefaults changed the caller's Levels: %+v", levels[0])
	}
	if err := (Config{Levels: DefaultLevels()}).Validate(); err != nil {
		t.Errorf("DefaultLevels do not validate: %v", err)
	}
}

func TestConfigJSON(t *testing.T) {
	in := `{"name":"web","levels":[{"name":"optional","enter":0.7,"exit":0.6},{"enter":0.9}],
		"features":{"recommendations":1,"suggestions":2},"interval":"500ms","min_dwell":30000000000}`
	var c Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Name:     "web",
		Levels:   []LevelConfig{{Name: "optional", Enter: 0.7, Exit: 0.6}, {Enter: 0.9}},
		Features: map[string]int{"recommendations": 1, "suggestions": 2},
		Interval: 500 * time.Millisecond,
		MinDwell: 30 * time.Second,
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("decoded mismatch (-want +got):\n%s", diff)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"interval":"500ms"`) || !strings.Contains(string(out), `"min_dwell":"30s"`) {
		t.Errorf("Marshal = %s, want durations as strings", out)
	}
	var back Config
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`{"interval":"soon"}`, `{"min_dwell":true}`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil || !strings.Contains(err.Error(), "degrade: invalid duration") {
			t.Errorf("Unmarshal(%s) = %v, want a degrade: invalid duration error", bad, err)
		}
	}
}
