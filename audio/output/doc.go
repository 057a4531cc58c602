// Package output is the last stage of the audio pipeline: it plays
// interleaved float32 frames on a sound device through miniaudio
// (github.com/gen2brain/malgo), or writes them to a WAV file in real time.
//
// # Selecting an output
//
// ParseSpec reads the --output flag: auto, alsa[:DEVICE], pulse[:DEVICE],
// null or wav:PATH. List returns what --list-outputs prints.
//
// # Pull model
//
// One producer goroutine (the pipeline) writes frames into a bounded
// single-producer single-consumer ring buffer with Write (blocks while
// full) or TryWrite + Writable (never blocks; select on Writable together
// with your other channels). The device pulls: miniaudio's data callback
// (or the WAV sink's clock goroutine) only copies from the ring into the
// device buffer and pads with silence on underrun. The callback takes no
// lock and never waits: the ring uses atomics, one CompareAndSwap claims
// the read side, and the only channel operation is a non-blocking send
// that wakes the producer. It does not allocate or log
// (BenchmarkFill: ~190 ns and 0 allocations per 882-frame period).
// miniaudio is asked for FormatF32 at the caller's rate and channel
// count, and converts to the hardware format itself.
//
// # Buffer sizes: latency against glitches
//
//   - Options.PeriodFrames/PeriodMS (default 20 ms): the callback size.
//     Smaller reacts faster; too small (< ~10 ms on a Pi) underruns.
//   - Options.Periods (default 4, at least 2): device buffer = periods ×
//     period. It is the output latency and what Pause waits for; more
//     periods ride out longer hiccups of the audio thread.
//   - Options.RingFrames (default 500 ms): absorbs producer stalls (GC,
//     decoding, network). It does not delay Start but Flush discards it.
//
// # Position
//
// Written() is the index of the next frame the producer writes (frames
// are numbered from 0 since Open; Flush does not renumber). The output
// logs, for every callback, which ring frames it handed to the device and
// how much silence followed, and takes a frame as heard Latency() later,
// counted in device frames. PlayedIndex() is one past the index of the
// last frame heard: frames below it were played or dropped. Played()
// counts only frames heard (no underrun silence, no flushed or lost
// frames). Both advance once per callback, so they are exact to one period
// plus the accuracy of the latency estimate, which miniaudio only prints
// in its log: its internal buffer (period × periods, parsed from the
// "Buffer Size" line) plus one period of its fixed-size-callback buffer.
// For the WAV sink the latency is 0: a frame is played when written.
//
// To report a track position, remember the Written() index where the
// track (or a seek) started: position = (PlayedIndex() - startIndex) /
// rate, clamped at 0. After Flush, PlayedIndex() stays below the flush
// point until the audio already in the device has played, then jumps.
//
// # Pause, Flush and device loss
//
// Pause stops taking frames from the ring, feeds silence until the
// device has played what it held, then stops the device: nothing is lost
// on any backend (ALSA drops its buffer on stop), and the ring is kept
// for Start. Flush drops the ring (a Write blocked in another goroutine
// returns ErrFlushed); frames already in the device still play.
//
// If the device disappears (USB DAC unplugged, sink unloaded, PulseAudio
// restarted), the output does not fail: it reports an error wrapping
// ErrDeviceLost on Errors(), closes the device, and reopens it with
// exponential backoff (Options.RetryMin..RetryMax), restarting playback if
// it was playing. A loss is noticed by miniaudio's stop notification when
// the backend sends one, and otherwise by a watchdog: a started device
// whose callback has not run for Options.StallTimeout (default 2 s) is
// lost. (With PulseAudio, miniaudio notices neither an unloaded sink nor
// a dead server: only the watchdog does.) The ring buffer is kept: playback
// resumes with the first frame the old device had not taken. The frames
// the lost device had taken but not yet played (at most its latency) are
// gone: PlayedIndex skips them and Stats().LostFrames counts them, so the
// position stays truthful. Meanwhile Write blocks once the ring is full;
// the producer stays responsive with TryWrite + Writable.
//
// # WAV sink
//
// wav:PATH behaves like a sound card: while started a clock goroutine
// takes one period per period of monotonic time and appends it to a
// 32-bit float WAV (see wav.go for the format and why), silence included
// when the ring runs dry; paused, it writes nothing. The header is valid at
// every moment (samples first, then sizes), so the file can be read while
// it grows.
//
// # Concurrency
//
// Write, TryWrite and Writable belong to the one producer goroutine. All
// other methods are safe from any goroutine. Start, Pause and Close are
// commands to the output's own goroutine, which alone touches the device.
package output
