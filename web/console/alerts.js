// New-message sound (Web Audio: two short tones, no sound file) and the unread count in the
// title. Browsers only let a page make sound after the user interacted with it, so the audio
// context is created on the first click or key press and reused.

let context = null;

function unlock() {
  if (context) return;
  const Audio = window.AudioContext || window.webkitAudioContext;
  if (!Audio) return;
  try {
    context = new Audio();
  } catch {
    context = null;
  }
}

for (const type of ["pointerdown", "keydown"]) {
  window.addEventListener(type, unlock, { capture: true, passive: true });
}

export const sound = {
  enabled: true,
  played: 0, // how many chimes were started (tests and curious officers can read it)

  /** A soft two-tone chime; silent until the page was interacted with. */
  chime() {
    if (!this.enabled || !context) return;
    if (context.state === "suspended") context.resume().catch(() => null);
    const start = context.currentTime + 0.01;
    [880, 1320].forEach((frequency, i) => {
      const osc = context.createOscillator();
      const gain = context.createGain();
      osc.type = "sine";
      osc.frequency.value = frequency;
      const at = start + i * 0.16;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.14);
      osc.connect(gain).connect(context.destination);
      osc.start(at);
      osc.stop(at + 0.15);
    });
    this.played += 1;
    document.body.dataset.chimes = String(this.played);
  },
};

/** Unread counts per conversation; `onChange(total)` after every change. */
export class Unread {
  constructor(onChange) {
    this.counts = new Map();
    this.onChange = onChange;
  }

  get total() {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  of(conv) {
    return this.counts.get(conv) || 0;
  }

  bump(conv) {
    this.counts.set(conv, this.of(conv) + 1);
    this.onChange(this.total);
  }

  clear(conv) {
    if (!this.counts.has(conv)) return;
    this.counts.delete(conv);
    this.onChange(this.total);
  }
}
