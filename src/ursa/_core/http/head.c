#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/head.h"

#include "common/digits.h"

#include <stdio.h>
#include <string.h>

int head_end(buffer *head, const head_tail *tail)
{
    if (buffer_reserve(head, 256) < 0)
        return -1;
    if (tail->date_line != NULL)
        buffer_append_str(head, tail->date_line);
    if (tail->add_server)
        buffer_append_str(head, "Server: ursa\r\n");
    if (tail->framing == FRAMING_CHUNKED) {
        buffer_append_str(head, "Transfer-Encoding: chunked\r\n");
    } else if (tail->add_length >= 0) {
        char digits[DIGITS_MAX];
        buffer_append_str(head, "Content-Length: ");
        buffer_append(head, digits, digits_decimal(digits, (uint64_t)tail->add_length));
        buffer_append(head, "\r\n", 2);
    }
    if (!tail->keep_alive)
        buffer_append_str(head, "Connection: close\r\n");
    else if (tail->http10)
        buffer_append_str(head, "Connection: keep-alive\r\n");
    buffer_append(head, "\r\n", 2);
    return 0;
}

const char *date_line(date_cache *cache, time_t second)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (second != cache->second) {
        struct tm tm;
        gmtime_r(&second, &tm);
        snprintf(cache->line, sizeof cache->line, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                 tm.tm_sec);
        cache->second = second;
    }
    return cache->line;
}

const char *head_reason_phrase(int status)
{
    /* The IANA registry's reason phrases (RFC 9110 15 and its successors). */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 208: return "Already Reported";
    case 226: return "IM Used";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 506: return "Variant Also Negotiates";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return ""; /* RFC 9112 4: the reason phrase may be empty */
    }
}
