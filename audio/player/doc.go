// Package player is roomcastd's audio engine: it implements
// playback.Engine by assembling fetch → decode → gain → limiter → volume
// (→ resampler) → output, with gapless joins, loudness normalization,
// prefetching and positions taken from the samples the output played.
//
// # Goroutines
//
// One pipeline goroutine owns everything: decoders, dsp stages, the
// output's producer side, the queue of the current and next track, the
// timeline. Engine methods send it one typed message per command (the
// sealed message interface of messages.go: cmdLoad, cmdSetNext, cmdPause,
// ...) with a reply channel and return once it has applied the command;
// they never wait for audio. Opening a track
// (fetch.Open, which waits for the HTTP headers; decode.Open, which reads
// the last page; seeking; decoding ~190 ms ahead) runs on a short-lived
// opener goroutine that hands the result back on a channel, so a slow
// network never stalls playback or commands. Position reads an immutable
// timeline published through an atomic pointer plus the output's atomic
// PlayedIndex: no lock, no round trip. SetVolume stores an atomic that the
// pipeline applies (30 ms ramp) at its next block. The pipeline takes no
// lock; the output's device callback takes none either.
//
// Known limit: the pipeline goroutine reads the current track through
// fetch.File, which blocks while a download is slower than real time;
// commands wait meanwhile (the 200 ms ring keeps sounding).
//
// # Signal path and block loop
//
// The pipeline produces 1024-frame blocks while the output's ring has
// room (TryWrite, then select on Writable with the command channels):
//
//	decoder (+ resampler if the track's rate differs from the device's)   feed
//	  → Gain (per-track dsp.ChooseGain decision)                          chain
//	  (→ crossfade mix of the outgoing track)                             crossfade
//	  → Limiter (fixed Latency(): 99 frames at 44.1 kHz)                  chain
//	  → Volume (SetVolume ramps; pause/seek/load fades)                   chain, fader
//	  → output ring (DefaultRingMS = 200 ms) → device                     device
//
// In the code each stage is a small type in its own file that owns its
// fields and states its invariants; pipe (pipe.go: run, the block loop,
// marks firing, events) coordinates them:
//
//	device.go     device: the output, its format, pending samples
//	chain.go      chain: gain → limiter → volume at the device format
//	feed.go       feed: the track read, and the resampler
//	crossfade.go  crossfade: the overlap in progress and its two gains
//	fade.go       fader: fade-outs before pause, seek, load; Settle
//	queue.go      queue: current, next and retired tracks; SetNext
//	opener.go     openers: opener goroutines, generations, prefetch
//	schedule.go   schedule: timeline segments and marks (timeline.go: the
//	              snapshot Position reads)
//	load.go       Load, the opened track, reopen, seek
//	track.go      track: one opened track (openTrack: fetch, decode)
//
// Volume sits before the ring, so a volume change, a pause and a seek are
// heard up to the ring's 200 ms later (plus the device latency). The
// ring is deliberately smaller than the output's 500 ms default for that
// reason; Options.RingMS trades it against stall tolerance.
//
// # Gapless joins
//
// A block never spans two tracks: when the current track's decoder is
// exhausted the next (prefetched) track becomes current, Gain.Set(next
// gain) is called between the two blocks, and the limiter and volume run
// on uninterrupted. At 0 dB and 100 % the output is therefore the exact
// concatenation of the tracks' decoded samples, delayed by the limiter's
// latency (TestGaplessSampleExact checks it bit for bit). With a gain
// change (track mode) dsp.Gain ramps over 5 ms from the first frame of the
// next track; in album mode the gains are equal and nothing changes.
// TrackStarted is emitted when the output's PlayedIndex passes the join.
//
// If the next track is not known yet (the receiver answers TrackStarted
// with SetNext) or still opening when the current one ends, the pipeline
// waits; if the receiver never says, the list is taken as ended once
// everything was heard.
//
// # Crossfade
//
// Off by default (Options.Crossfade 0): joins are gapless and sample-exact
// as above. With a length d (Options.Crossfade, or SetCrossfade, an atomic
// read at each block, so it applies from the next join whose overlap has
// not begun), the last d of the current track is mixed with the first d
// of the next by dsp.Crossfade's equal-power gains (cos for the outgoing,
// sin for the incoming track: cos² + sin² = 1, −3 dB each in the middle),
// so the list plays d shorter per join. Each track keeps its own gain
// stage during the overlap (the outgoing one on a second dsp.Gain); the
// mix then runs through the one limiter and volume.
//
// The next track starts when the crossfade begins: its timeline segment
// starts at the overlap's first frame, so Position reports the next
// track (from 0) from the moment its first frame is heard, and
// TrackStarted is emitted then, not when the outgoing track's last frame
// is heard. The outgoing track is closed once the end of the overlap was
// heard (a seek before that goes back into it like at a gapless join).
//
// d is clamped to half the shorter of the two tracks' lengths, so two
// overlaps never meet. There is no crossfade, only the plain gapless join
// (or the reopen), when: d is 0; the list ends; the next track is not
// known or not opened yet when the overlap would begin (the prefetch
// starts Prefetch + d before the end so that is rare); either track has
// an unknown length (truncated file); the next track has another sample
// rate or channel count than the device, or the current one is resampled
// (the overlap is mixed at the device rate, without a resampler); the
// current track was loaded or sought into its last d (the overlap must
// begin at a block boundary exactly d before the end: the block loop
// shortens the block before it). A Load or seek never crossfades from
// what played before; a seek during an overlap ends it.
//
// # Formats: when the output is reopened
//
// The output opens at 44.1 kHz stereo in New (so a wrong --output fails at
// once) and is reopened at the track's own rate and channel count on a
// Load whose track differs: a Load is a discontinuity anyway, and playing
// at the source rate avoids resampling, which costs about as much as
// decoding. At a gapless join to a track with another sample rate the
// device keeps its rate and the new track is resampled (dsp.QualityPi);
// consecutive tracks with the same foreign rate share one resampler run,
// so their joins stay seamless. A join to a track with another channel
// count cannot be gapless: the list plays out, the output is reopened and
// the next track starts (TrackStarted when heard; if the output cannot be
// reopened, TrackStarted then TrackFailed, as for a next track that
// cannot be opened).
//
// # Pause, resume, seek, load
//
// Pause fades out over 20 ms, produces exactly up to the end of the fade,
// waits until the device has taken it, then output.Pause (which plays out
// the device buffer). Nothing after the fade was produced, so Resume
// (output.Start + 20 ms fade in) continues at the next frame; the
// limiter's delay line still holds the following 2 ms. The short silence
// between the fade and the device stop may count as one underrun.
//
// Seek and Load while playing fade out over 10 ms, write 50 ms of silence
// behind the fade, wait until the fade was taken, Flush, then reposition
// (decoder SeekFrame, limiter and resampler reset, gain Jump, volume Mute
// + 10 ms fade in) or start the new track. A track loaded at position 0
// starts bit-exact without a fade. Seeking applies to the audible track:
// if the pipeline already produced the start of the next one (within the
// ring), it goes back to the previous track and joins the next again.
//
// # Positions
//
// The timeline is a list of segments [start output index, track, source
// frame at start, in/out rate]; a segment's start already includes the
// limiter latency (frames entering the limiter now reach output index
// Written()+pending+Latency()). Position maps output.PlayedIndex() through
// it, so it reports what was heard, freezes while paused, and jumps only
// when the jump is heard. While a Load is opening it reports the requested
// track and position.
//
// # Errors
//
// A track that cannot be fetched or decoded (HTTP status, not Vorbis,
// corrupt headers) is reported as TrackFailed with the fetch or decode
// error. For the loaded track that happens at once; for the next track
// at the moment it would have started: TrackStarted then TrackFailed,
// which is what receiver.transport expects in order to skip to the track
// after it with Load. A truncated file (decode.Open reports ErrTruncated
// because the last page is missing) is opened forward-only with
// decode.NewReader and plays what decodes; a track whose audio data ends
// early or turns corrupt in the middle plays what decoded and the list
// moves on gaplessly (logged, no TrackFailed: the audio was played, and a
// TrackFailed would make the receiver reload the following track). A
// forward-only track cannot seek (TrackFailed on SeekTo). Decoding never
// panics (package decode recovers); a panic in the pipeline itself is
// recovered, logged, reported as TrackFailed, and the Player refuses
// further commands.
//
// Every event is emitted after the state it implies is stored: whoever
// reacts to TrackStarted or TrackFailed and calls Position finds the
// event's track (a failed one at 0 ms), and after Ended the last track at
// its end (TestStateStoredBeforeEvent checks it at the moment of emission).
//
// # Ended
//
// After the last frame the limiter's tail and 50 ms of silence are
// written; once the device has taken the last frame the output is paused
// (which plays out the device buffer, so no underrun is counted) and Ended
// is emitted.
package player
