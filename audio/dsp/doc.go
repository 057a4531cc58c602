// Package dsp holds the signal stages of roomcastd's audio pipeline:
// loudness normalization gain, a look-ahead true-peak limiter, software
// volume with pause/resume fades, a sample-rate converter and an optional
// equal-power crossfade.
//
// All stages work on interleaved float32 samples (full scale ±1.0) in
// blocks of any size, in place or into caller-owned buffers (the pull
// pattern of gopxl/beep: the caller owns the buffer). Only complete frames
// are processed; a trailing partial frame is left alone. After
// construction no stage allocates. Each stage is owned by the pipeline
// goroutine and is not safe for concurrent use, except Volume.SetVolume
// and Volume.Volume.
//
// # Pipeline
//
//	decode → Gain → Limiter → Volume → Resampler → output
//
// A pipeline goroutine runs, per block (in = source rate, out = device
// rate, ch channels):
//
//	need := rs.InputFramesFor(outFrames)      // exact pull
//	n, err := src.Read(buf[:need*ch])         // decoded, gapless-joined
//	// at a track boundary inside buf: split, gain.Set(nextGainDB) between
//	gain.Process(buf[:n])
//	lim.Process(buf[:n])                      // output delayed by lim.Latency()
//	vol.Process(buf[:n])
//	c, p := rs.Process(buf[:n], out)          // c == n when need was read
//	// at the end of the queue: lim.Flush(tail) → vol → rs.Process, then rs.Drain(out)
//	// on seek: lim.Reset(); rs.Reset(); gain.Jump(db); vol.Mute(); vol.FadeIn(10ms)
//
// Positions: output frame k of the resampler is source time k·in/out
// exactly (no group delay), and the limiter delays by Latency() source
// frames, so the source frame being heard is k·in/out − lim.Latency(). Gain
// and Volume have no delay.
//
// Bit-exact passthrough. At 0 dB gain, with no sample near the ceiling,
// at 100 % volume and with equal rates the chain's output is its input
// delayed by lim.Latency() frames, bit for bit (TestChainUnityBitExact):
// Gain and Volume do not touch samples when their factor is exactly 1,
// the limiter multiplies by exactly 1 (or copies), the resampler copies.
//
// Non-finite input. Processing paths replace NaN by 0 and clamp
// magnitudes above 2^20 (±Inf included) to ±2^20; the exact-passthrough
// paths (unity Gain/Volume, equal-rate Resampler) copy bits unchanged.
// The Limiter inspects every sample, so the chain never outputs NaN or
// Inf, and never a sample above the ceiling.
//
// # Gain (loudness normalization)
//
// ChooseGain is a pure function from the policy (mode auto/track/album/
// off, target −14 LUFS, ceiling −1 dBTP), the album context and what is
// known about the track: the library's BS.1770 measurements (preferred)
// or ReplayGain tags (fallback; ReplayGain 2.0's 89 dB SPL reference is
// −18 LUFS, so a tag of G dB means −18 − G LUFS, and the gain to a −14
// LUFS target is G + 4 dB; REPLAYGAIN_*_PEAK is a linear sample peak and
// is used as if it were the true peak). Album mode falls back to track
// values and vice versa; nothing known gives 0 dB. gain = target −
// loudness; a positive gain is capped at ceiling − truePeak; the result
// is clamped to [−40, +20] dB and rounded to 0.01 dB, so "no change" is an
// exact 0 dB. ParseReplayGain accepts "+1.23 dB", "-7.5dB", "2,5 dB".
//
// The Gain stage applies that gain. Set with the gain already in effect
// does nothing, so gapless album tracks continue without any change at
// the boundary; a different gain is reached by a 5 ms linear ramp (no
// click). Jump changes it at once (start, seek).
//
// # Limiter
//
// A look-ahead peak limiter, cheap enough for a Pi Zero 2:
//
//   - Detection: per frame, the largest sample magnitude over channels and
//     the 4×-oversampled values between samples (three fractional phases
//     of a 12-tap Kaiser-windowed sinc, β = 4, scaled by +0.5 dB as a
//     safety margin). The interpolator only runs where one of the 12
//     samples it reads exceeds ceiling / (sum of |coefficients|) ≈ −7.5
//     dBFS; elsewhere no interpolated value can reach the ceiling.
//   - Gain computer: the required gain ceiling/peak of each frame enters a
//     running minimum over w + 12 frames (a monotonic deque, O(1)
//     amortized; w = look-ahead, default 2 ms), followed by an exponential
//     release (default τ = 100 ms; within 1e-5 of unity it snaps to
//     exactly 1) and a w-frame moving average, which turns every gain
//     reduction into a linear attack of exactly the look-ahead. With the
//     delay below, each frame and the 6 frames on either side of it get at
//     most its required gain, so sample peaks never exceed the ceiling and
//     the gain is flat across the interpolator span.
//   - Delay: Latency() = w + 11 frames (99 frames = 2.24 ms at 44.1 kHz,
//     107 at 48 kHz). The delay is always there, so that positions and
//     gapless joins stay constant; while idle the output is the delayed
//     input, bit for bit. Flush emits the last Latency() frames at the end
//     of the queue; Reset (seek) empties the line.
//   - Cost: a block whose samples are all below the gating level, with the
//     limiter idle, only pays for a branch-free max scan and the delay-line
//     copy (~1 ns per stereo frame); otherwise detection costs ~5–10 ns
//     per frame and active limiting ~15 ns.
//
// True peak: sample peaks are at most the ceiling (−1 dBFS) exactly. On
// music-like signals and hard-clipped masters with 4–10 dB of limiting the
// output true peak measured by package loudness (BS.1770, 4× with 24 taps
// per phase) is −1.1 to −1.2 dBTP (TestLimiterTruePeak). Signals with full
// energy up to Nyquist (white noise) can exceed it by up to ~0.6 dB,
// because the short interpolator rolls off above 0.4·fs. A resampler after
// the limiter moves true peaks by about ±0.1 dB (TestChainTruePeak).
// Why a constant delay rather than bypassing the limiter when gain ≤ 0 dB
// and the source's true peak is below the ceiling: switching the delay on
// and off would shift the timeline at gapless joins; a fixed 2.2 ms delay
// is simpler and the idle cost is ~1 ns per frame.
//
// # Volume
//
// VolumeGain maps 0–100 % to amplitude: from 10 % to 100 % every step is
// 0.6 dB (50 % = −30 dB, 10 % = −54 dB), below 10 % the amplitude falls
// linearly to exactly 0 at 0 % (1 % = −74 dB). Equal dB steps match
// loudness perception over the useful range, and the linear tail avoids
// the audible jump from silence to −54 dB that a pure dB curve has at the
// bottom. SetVolume may be called from any goroutine (atomic); Process
// then ramps linearly in amplitude, per frame, over 30 ms: no zipper noise,
// no clicks. FadeOut(d) returns the frames until silence (then Faded()
// reports true and the output is exact zeros); FadeIn(d) starts from 0.
// Use 10–30 ms fades for pause and resume.
//
// # Resampler
//
// Polyphase Kaiser-windowed sinc, linear phase. The cut-off lies in the
// middle of a transition band that ends at the lower of the two Nyquist
// frequencies, so every image and alias is attenuated by the full stopband
// attenuation. When the reduced output rate out/gcd(in, out) is at most
// 1024 (44.1 ↔ 48 kHz: 160 or 147 phases; 22.05 → 48 kHz: 320; 96 → 48 kHz:
// 1) every phase has its own exact filter row; other ratios use 256 (Pi)
// or 512 (High) rows with linear interpolation between neighbouring rows.
// Each row is normalized to unity DC gain. Positions are exact integer
// arithmetic (no drift).
//
//	quality  stopband  passband (to −0.01 dB)  taps 44.1↔48k  1 kHz THD+N  worst alias
//	Pi       90 dB     0.80·Nyquist (17.6 kHz)  60 / 64        −112 dB      −94 dB
//	High     120 dB    0.91·Nyquist (20.0 kHz)  176 / 190      −136 dB      −123 dB
//
// Group delay: none (the design is aligned so that output frame k is the
// input at k·in/out; measured |delay| < 0.0001 frames). The resampler
// needs LookAhead() = taps/2 input frames beyond that point before it can
// produce a frame; InputFramesFor accounts for it. Equal rates: exact
// copy. Cost: see docs/performance.md — about 40 ns per stereo frame for
// Pi quality (~0.9× of Vorbis decode CPU) and 110 ns for High, on the
// build VM; the cheapest setup is therefore to open the output device at
// the source rate.
//
// # Crossfade
//
// Crossfade mixes the end of one track into the start of the next with
// cos/sin (equal-power) gains; optional, off by default, never for
// gapless albums.
package dsp
