/** A request serve answers with an HTTP error status and a one-line plain-text body. */
export class HttpError extends Error {
  constructor(
    /** 400: malformed, 403: wrong Host, 404: not listed, 405: not GET/HEAD. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
