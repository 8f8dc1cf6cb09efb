/** An http:// or https:// URL, the scheme in any case (RFC 3986); the handlers parse and normalize it. */
export const HTTP_URL_PATTERN = '^[Hh][Tt][Tt][Pp][Ss]?://';
