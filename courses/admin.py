from django.contrib import admin

from courses.models import Concept, Course, Item, Membership


class ConceptInline(admin.TabularInline):
    model = Concept
    fields = ("order", "slug", "title")
    extra = 0
    show_change_link = True


class ItemInline(admin.TabularInline):
    model = Item
    fields = ("order", "slug", "kind", "status", "difficulty")
    extra = 0
    show_change_link = True


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "updated_at")
    inlines = [ConceptInline]


@admin.register(Concept)
class ConceptAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "order")
    list_filter = ("course",)
    filter_horizontal = ("prerequisites",)
    inlines = [ItemInline]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("slug", "concept", "kind", "status", "origin", "difficulty")
    list_filter = ("status", "kind", "origin", "concept__course")
    search_fields = ("slug", "prompt")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "course", "role")
    list_filter = ("role", "course")
