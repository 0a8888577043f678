// gpio.c — GPIO lines through the kernel's character device (uAPI v2, Linux 5.10+), the
// way libgpiod v2 does it: a line request built from a line config, one fd per request.
#define _GNU_SOURCE
#include "wisp_platform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

// The uAPI v2 ABI, checked against the header we build with: a sysroot whose
// <linux/gpio.h> disagrees fails here, at compile time, not on a board.
_Static_assert(sizeof(struct gpio_v2_line_config_attribute) == 24, "gpio_v2_line_config_attribute");
_Static_assert(sizeof(struct gpio_v2_line_config) == 272, "gpio_v2_line_config");
_Static_assert(sizeof(struct gpio_v2_line_request) == 592, "gpio_v2_line_request");
_Static_assert(sizeof(struct gpio_v2_line_values) == 16, "gpio_v2_line_values");
_Static_assert(offsetof(struct gpio_v2_line_request, consumer) == 256, "request.consumer");
_Static_assert(offsetof(struct gpio_v2_line_request, config) == 288, "request.config");
_Static_assert(offsetof(struct gpio_v2_line_request, num_lines) == 560, "request.num_lines");
_Static_assert(offsetof(struct gpio_v2_line_request, fd) == 588, "request.fd");
_Static_assert(offsetof(struct gpio_v2_line_config, attrs) == 32, "config.attrs");
_Static_assert(offsetof(struct gpio_v2_line_values, mask) == 8, "values.mask");

int32_t wisp_gpio_request(const char *chip_path, uint32_t line, int32_t output, int32_t initial) {
    int chip;
    do { chip = open(chip_path, O_RDWR | O_CLOEXEC); } while (chip < 0 && errno == EINTR);
    if (chip < 0) return -errno;
    struct gpio_v2_line_request req;
    memset(&req, 0, sizeof req);
    req.offsets[0] = line;
    req.num_lines = 1;
    strncpy(req.consumer, "wisp", sizeof req.consumer - 1);
    if (output) {
        req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT;
        req.config.num_attrs = 1;
        req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
        req.config.attrs[0].attr.values = initial ? 1 : 0;
        req.config.attrs[0].mask = 1;
    } else {
        req.config.flags = GPIO_V2_LINE_FLAG_INPUT;
    }
    int r = ioctl(chip, GPIO_V2_GET_LINE_IOCTL, &req);
    int err = errno;
    close(chip);
    if (r < 0) return -err;
    return req.fd;
}

int32_t wisp_gpio_get(int32_t request_fd) {
    struct gpio_v2_line_values v = {.bits = 0, .mask = 1};
    if (ioctl(request_fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0) return -errno;
    return (int32_t)(v.bits & 1);
}

int32_t wisp_gpio_set(int32_t request_fd, int32_t value) {
    struct gpio_v2_line_values v = {.bits = value ? 1 : 0, .mask = 1};
    if (ioctl(request_fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0) return -errno;
    return 0;
}
