package domain

import (
	"maps"
	"time"
)

// Regions are the regions the shop ships to, by upper-case CLDR region
// code, each with its delivery time in business days (Monday to Friday,
// counted in UTC) after the shipment is scheduled.
type Regions map[string]int

// DefaultRegions returns the regions the shop ships to unless configured
// otherwise, with their delivery times in business days:
//
//   - 2: Germany (DE), where the warehouse is;
//   - 3: its neighbours in the EU: AT, BE, CZ, DK, FR, LU, NL, PL;
//   - 4: the rest of the EU: BG, CY, EE, ES, FI, GR, HR, HU, IE, IT, LT,
//     LV, MT, PT, RO, SE, SI, SK; and CH, NO;
//   - 5: the United Kingdom (GB), for customs;
//   - 7: the United States (US).
//
// Each call returns a new map, which the caller may change.
func DefaultRegions() Regions {
	r := Regions{"DE": 2, "GB": 5, "US": 7}
	for _, c := range []string{"AT", "BE", "CZ", "DK", "FR", "LU", "NL", "PL"} {
		r[c] = 3
	}
	for _, c := range []string{"BG", "CY", "EE", "ES", "FI", "GR", "HR", "HU", "IE", "IT", "LT", "LV", "MT", "PT", "RO", "SE", "SI", "SK", "CH", "NO"} {
		r[c] = 4
	}
	return r
}

// Clone returns a copy of r.
func (r Regions) Clone() Regions { return maps.Clone(r) }

// AddBusinessDays returns t plus n business days, in UTC: each day added
// skips Saturdays and Sundays, and the time of day is kept. A t on a
// weekend counts from the Monday after it at the same time of day
// (Saturday 10:00 plus one business day is Tuesday 10:00). n <= 0
// returns t in UTC.
func AddBusinessDays(t time.Time, n int) time.Time {
	t = t.UTC()
	if n <= 0 {
		return t
	}
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		t = t.AddDate(0, 0, 1)
	}
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	return t
}
