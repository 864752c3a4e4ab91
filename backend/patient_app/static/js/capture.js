// Guided capture with the phone's front camera: a face oval to fill, the baseline photo as a
// faint ghost for follow-ups, live hints from the API's preview check of small frames, a
// countdown once the frame is right, exposure and white balance locked where the browser
// allows, and the camera settings it reports returned with the photo.
import {api} from './api.js';

const PREVIEW_WIDTH = 640;
const PREVIEW_HEIGHT = 480;
const PREVIEW_INTERVAL_MS = 350;
//: Consecutive ready frames before the countdown starts (one lucky frame is not enough).
const READY_FRAMES = 2;
const COUNTDOWN_S = 3;
const PHOTO_QUALITY = 0.92;
//: Camera settings worth storing as capture conditions (never deviceId/groupId).
const SETTINGS = ['width', 'height', 'aspectRatio', 'frameRate', 'facingMode', 'resizeMode', 'exposureMode',
  'exposureTime', 'exposureCompensation', 'iso', 'brightness', 'whiteBalanceMode', 'colorTemperature',
  'focusMode', 'focusDistance', 'zoom'];

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function toBlob(canvas, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
}

export class GuidedCapture {
  /**
   * @param {HTMLElement} root  element with .camera video, .oval, .countdown, .hints, .shutter
   * @param {object} options  onPhoto(blob, conditions), onError(message)
   */
  constructor(root, {onPhoto, onError}) {
    this.root = root;
    this.video = root.querySelector('video');
    this.oval = root.querySelector('.oval');
    this.countdownEl = root.querySelector('.countdown');
    this.hintsEl = root.querySelector('.hints');
    this.onPhoto = onPhoto;
    this.onError = onError;
    this.running = false;
    this.readyStreak = 0;
    this.counting = false;
    this.locked = {};
    this.lastHint = '';
  }

  async start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.onError('This browser cannot use the camera. Open the app in Chrome or Safari.');
      return;
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia(
        {video: {facingMode: 'user', width: {ideal: 1280}, height: {ideal: 960}}, audio: false});
    } catch (error) {
      this.onError('The camera could not start. Allow camera access for this app and try again.');
      return;
    }
    this.track = this.stream.getVideoTracks()[0];
    this.video.srcObject = this.stream;
    await this.video.play().catch(() => {});
    if (!this.video.videoWidth) await new Promise((resolve) => this.video.addEventListener('loadeddata', resolve, {once: true}));
    this.running = true;
    this.root.dataset.state = 'framing';
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
  }

  async loop() {
    while (this.running && !this.counting) {
      const started = performance.now();
      await this.check();
      await wait(Math.max(0, PREVIEW_INTERVAL_MS - (performance.now() - started)));
    }
  }

  frame(width, height) {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    canvas.getContext('2d').drawImage(this.video, 0, 0, width, height);
    return canvas;
  }

  async check() {
    const vw = this.video.videoWidth || PREVIEW_WIDTH;
    const vh = this.video.videoHeight || PREVIEW_HEIGHT;
    const scale = Math.min(1, PREVIEW_WIDTH / Math.max(vw, vh));
    const blob = await toBlob(this.frame(Math.round(vw * scale), Math.round(vh * scale)), 0.7);
    let result;
    try {
      result = await api('/me/preview-check', {method: 'POST', body: blob, contentType: 'image/jpeg'});
    } catch (error) {
      this.showHints([{code: 'offline', message: 'No live hints without network: fill the oval with your face, then tap “Take photo now”.'}], false);
      this.readyStreak = 0;
      return;
    }
    if (!this.running || this.counting) return;
    this.showHints(result.hints, result.ready);
    this.readyStreak = result.ready ? this.readyStreak + 1 : 0;
    if (this.readyStreak >= READY_FRAMES) this.countdown();
  }

  showHints(hints, ready) {
    const text = ready ? 'Hold still…' : hints.map((hint) => hint.message).join(' ');
    this.hintsEl.textContent = text;
    this.hintsEl.dataset.codes = hints.map((hint) => hint.code).join(' ');
    this.hintsEl.classList.toggle('ready', ready);
    this.oval.classList.toggle('ready', ready);
  }

  async lockCamera() {
    // Lock exposure and white balance after framing, so the countdown does not change them.
    const capabilities = this.track.getCapabilities ? this.track.getCapabilities() : {};
    const advanced = {};
    if ((capabilities.exposureMode || []).includes('manual')) advanced.exposureMode = 'manual';
    if ((capabilities.whiteBalanceMode || []).includes('manual')) advanced.whiteBalanceMode = 'manual';
    if (!Object.keys(advanced).length) return;
    try {
      await this.track.applyConstraints({advanced: [advanced]});
      this.locked = advanced;
    } catch { /* the browser refused: the photo is taken unlocked, and says so */ }
  }

  conditions(width, height) {
    const settings = this.track && this.track.getSettings ? this.track.getSettings() : {};
    const conditions = {};
    for (const name of SETTINGS) {
      const value = settings[name];
      if (typeof value === 'number' && Number.isFinite(value)) conditions[name] = value;
      else if (typeof value === 'string' && value.length <= 40) conditions[name] = value;
    }
    conditions.width = width;
    conditions.height = height;
    conditions.exposureLocked = this.locked.exposureMode === 'manual';
    conditions.whiteBalanceLocked = this.locked.whiteBalanceMode === 'manual';
    return conditions;
  }

  async countdown() {
    if (this.counting) return;
    this.counting = true;
    this.root.dataset.state = 'countdown';
    await this.lockCamera();
    for (let n = COUNTDOWN_S; n > 0; n -= 1) {
      this.countdownEl.textContent = String(n);
      await wait(1000);
      if (!this.running) return;
    }
    this.countdownEl.textContent = '';
    await this.capture();
  }

  /** Take the photo now (the countdown's end, or the patient's own tap). */
  async capture() {
    if (!this.running) return;
    const width = this.video.videoWidth;
    const height = this.video.videoHeight;
    const blob = await toBlob(this.frame(width, height), PHOTO_QUALITY);
    const conditions = this.conditions(width, height);
    this.stop();
    this.root.dataset.state = 'taken';
    this.onPhoto(blob, conditions);
  }
}
