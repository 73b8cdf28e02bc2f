#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include "http/head.h"

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
        char line[64];
        int n = snprintf(line, sizeof line, "Content-Length: %lld\r\n", (long long)tail->add_length);
        buffer_append(head, line, (size_t)n);
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
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}
