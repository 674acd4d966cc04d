// Desktop notifications and a short sound for messages that arrive while the tab is in the
// background, each with its own setting (kept in this browser).

export interface Settings {
  notifications: boolean;
  sound: boolean;
}

const KEY = 'expresschat:settings';

export function loadSettings(): Settings {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Settings>;
    return { notifications: saved.notifications === true, sound: saved.sound !== false };
  } catch {
    return { notifications: false, sound: true };
  }
}

export function saveSettings(settings: Settings) {
  try {
    localStorage.setItem(KEY, JSON.stringify(settings));
  } catch {
    // Not kept across loads.
  }
}

/** Asks the browser for permission; whether notifications may now be shown. */
export async function allowNotifications(): Promise<boolean> {
  if (typeof Notification !== 'function') return false;
  if (Notification.permission === 'granted') return true;
  return (await Notification.requestPermission()) === 'granted';
}

let audio: AudioContext | undefined;

function chime() {
  try {
    audio ??= new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.08, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.25);
  } catch {
    // No audio output: nothing to play.
  }
}

/** A message from someone else arrived: tell the person if the tab is in the background. */
export function alertFor(settings: Settings, from: string, text: string, chatId: string) {
  if (document.visibilityState === 'visible') return;
  if (settings.sound) chime();
  if (settings.notifications && typeof Notification === 'function' && Notification.permission === 'granted') {
    // Notification text is shown as plain text by the browser.
    const n = new Notification(from, { body: text.slice(0, 140), tag: chatId });
    n.onclick = () => {
      window.focus();
      n.close();
    };
  }
}
