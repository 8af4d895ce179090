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

/**
 * A question past the response target, told once per question (conversation and cycle): a
 * chime, a desktop notification when the officer or supervisor allowed them, and
 * `body[data-late-alerts]` (for tests). The queue is redrawn every change, so its rows call
 * this again and again: only the first call for a question does anything.
 */
export const late = {
  told: new Set(),
  count: 0,

  /** Ask for desktop notifications (call from a click: browsers refuse otherwise). */
  ask() {
    if (!("Notification" in window) || Notification.permission !== "default") return;
    Notification.requestPermission().catch(() => null);
  },

  alert(key, title, body) {
    if (this.told.has(key)) return;
    this.told.add(key);
    this.count += 1;
    document.body.dataset.lateAlerts = String(this.count);
    sound.chime();
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification(title, { body, tag: `late-${key}` });
      } catch {
        // some browsers only notify from a service worker: the chime and the row still tell
      }
    }
  },
};
