package forms

// Identifier rules of protocol.md §2. Written out by hand rather than as regular
// expressions: they run on every request path, and need no package state.

// ValidProjectID reports whether s is a valid project id:
// ^[a-z0-9][a-z0-9_-]{0,63}$.
func ValidProjectID(s string) bool { return validLowerID(s) }

// ValidFormID reports whether s is a valid form id: ^[a-z0-9][a-z0-9_-]{0,63}$.
func ValidFormID(s string) bool { return validLowerID(s) }

// ValidVersion reports whether s is a valid form version:
// ^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$.
func ValidVersion(s string) bool {
	if len(s) < 1 || len(s) > 32 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func validLowerID(s string) bool {
	if len(s) < 1 || len(s) > 64 || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || c >= 'A' && c <= 'Z' }
