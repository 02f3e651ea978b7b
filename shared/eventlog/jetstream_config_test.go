package eventlog

import (
	"reflect"
	"testing"
)

// TestSameLimitsSeesEverySettingStreamConfigSets: changing any setting streamConfig gives
// the stream (a non-zero field, or one of its deliberate zeros) makes sameLimits report a
// difference, so a setting added to streamConfig but not to sameLimits cannot be skipped
// silently when a process opens an existing stream.
func TestSameLimitsSeesEverySettingStreamConfigSets(t *testing.T) {
	t.Parallel()
	jsopt, err := JetStreamOptions{Stream: "S"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := streamConfig(Options{}.withDefaults(), jsopt)
	// Zero values streamConfig sets on purpose: no age limit, limits retention, file
	// storage, discard old.
	deliberateZeros := map[string]bool{"MaxAge": true, "Retention": true, "Storage": true, "Discard": true}
	if !sameLimits(want, want) {
		t.Fatal("sameLimits(want, want) = false")
	}
	v := reflect.ValueOf(want)
	checked := 0
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if name == "Name" || (v.Field(i).IsZero() && !deliberateZeros[name]) {
			continue // the stream's name is not a limit; a zero field is not set
		}
		got := want
		if !perturb(reflect.ValueOf(&got).Elem().Field(i)) {
			t.Fatalf("field %s (%s): the test cannot change a field of that kind", name, v.Field(i).Kind())
		}
		if sameLimits(got, want) {
			t.Errorf("a stream whose %s differs counts as already configured: sameLimits does not compare it", name)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d fields checked, want every one streamConfig sets", checked)
	}
}

// perturb changes v to another value of its kind, reporting false for a kind it cannot.
func perturb(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return false
		}
		v.Set(reflect.Append(v, reflect.ValueOf("other.subject").Convert(v.Type().Elem())))
	default:
		return false
	}
	return true
}
