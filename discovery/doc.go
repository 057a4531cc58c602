// Package discovery makes roomcast speakers visible on the LAN and lets a
// picker (through its broker) pair them, without letting strangers take
// them over.
//
// Four parts, each with one owner:
//
//   - Advertiser announces a speaker as DNS-SD service _roomcast._tcp over
//     multicast DNS (RFC 6762/6763) with github.com/grandcat/zeroconf, on the
//     interfaces an InterfaceSpec selects. Its Run goroutine owns the
//     zeroconf server: it probes for an instance of the same name before
//     announcing, renames itself ("Kitchen (2)") on a conflict, re-announces
//     when interfaces or addresses change (it polls them), and says goodbye
//     on shutdown.
//   - Browser lists speakers on chosen interfaces. Its Run goroutine owns
//     the record cache; Speakers returns an immutable snapshot and Changes
//     signals new ones. Goodbye packets (TTL 0) remove a speaker after the
//     one second RFC 6762 §10.1 allows.
//   - Pairing is the speaker side of pairing: an X25519 key pair and the
//     broker credentials in the state directory, an HTTP handler for
//     GET /v1/info and POST /v1/pair. Its Run goroutine owns the
//     credentials, the replay cache and the rate limiters.
//   - Pair / PairWith is the picker/broker side: fetch the info, encrypt the
//     broker URL and token to the speaker's key, post them.
//
// Everything that parses network input (ParseTXT, DecodePairRequest, the
// browser's record handling) treats it as hostile: bounded sizes, strict
// character sets, clear errors, no panics. Both decoders are fuzzed.
package discovery
