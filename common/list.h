#ifndef COMMON_LIST_H_
#define COMMON_LIST_H_

/* Intrusive doubly linked list (a ring with a head sentinel). */

#include <stddef.h>

struct list
{
    struct list *prev;
    struct list *next;
};

#define CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void list_init(struct list *head)
{
    head->prev = head;
    head->next = head;
}

static inline int list_empty(const struct list *head)
{
    return head->next == head;
}

static inline void list_push(struct list *head, struct list *item)
{
    item->prev = head->prev;
    item->next = head;
    head->prev->next = item;
    head->prev = item;
}

static inline void list_remove(struct list *item)
{
    item->prev->next = item->next;
    item->next->prev = item->prev;
    item->prev = item;
    item->next = item;
}

#define LIST_FOREACH(item, head) \
    for ((item) = (head)->next; (item) != (head); (item) = (item)->next)

#endif /* COMMON_LIST_H_ */
