// UART0 (the console on GP0) to a byte sink, and the same bytes split into lines for matching.
export class LineSplitter {
  constructor(onLine) {
    this.onLine = onLine;
    this.partial = [];
  }

  push(byte) {
    if (byte === 0x0a) {
      let text = Buffer.from(this.partial).toString('latin1');
      if (text.endsWith('\r')) text = text.slice(0, -1);
      this.partial = [];
      this.onLine(text);
    } else {
      this.partial.push(byte);
    }
  }

  /** Bytes after the last line ending (a line cut off by a reset or a power cut). */
  get rest() {
    return Buffer.from(this.partial).toString('latin1');
  }
}
