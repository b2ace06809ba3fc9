/* main.c — placeholder for the `dimple` command-line tool. */
#include <dimple.h>
#include <stdio.h>

int main(void)
{
    printf("dimple %s\n", dimple_version());
    return 0;
}
