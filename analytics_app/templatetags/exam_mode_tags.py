from django import template

from examplatform import exam_mode

register = template.Library()


@register.simple_tag
def exam_mode_state() -> exam_mode.State:
    return exam_mode.state()
