// The console's two languages: the browser's choice first, then the person's (kept).
import { signal } from "./state";

export type Lang = "en" | "zh-CN";
const KEY = "cumulo.lang";

const en = {
  appName: "cumulo",
  signIn: "Sign in",
  signUp: "Create account",
  signOut: "Sign out",
  email: "E-mail",
  password: "Password",
  birthDate: "Date of birth",
  terms: "I accept the terms of service",
  showTerms: "Read the terms",
  noAccount: "No account yet?",
  haveAccount: "Already have an account?",
  minorTitle: "Under 14?",
  minorText:
    "Children cannot create an account themselves. A parent or guardian signs in and creates it for them (Account → Family), and stays responsible for it.",
  created: "Your account is ready. Sign in to start.",
  files: "Files",
  trash: "Trash",
  account: "Account",
  language: "Language",
  newFolder: "New folder",
  folderName: "Folder name",
  create: "Create",
  cancel: "Cancel",
  upload: "Upload files",
  dropHere: "Drop files here to upload them",
  name: "Name",
  size: "Size",
  modified: "Modified",
  actions: "Actions",
  download: "Download",
  rename: "Rename",
  delete: "Move to trash",
  restore: "Restore",
  emptyTrash: "Empty trash",
  empty: "Nothing here yet.",
  root: "My files",
  used: "{used} of {quota} used",
  uploading: "Uploading {name}: {percent}%",
  paused: "{name}: paused at {percent}% — choose the same file again to resume",
  resume: "Resume",
  pause: "Pause",
  done: "Done",
  loading: "Loading…",
  reactivateTitle: "Keep your account",
  reactivateIntro: "This link comes from the notice we sent about your unused account.",
  stateActive: "Your account is active. Nothing will be deleted.",
  stateFrozen: "Your account is frozen because it was not used. Its data will be deleted on {when} unless you keep it.",
  stateDeleting: "Your account's data is being deleted.",
  stateDeleted: "This account was deleted on {when}.",
  keepAccount: "Keep my account",
  reactivated: "Welcome back: your account is active again and nothing will be deleted.",
  linkInvalid: "This link is not valid (it may have been used or may have expired). Sign in to keep your account.",
  signedInAs: "Signed in as {email}",
  frozenBanner: "Your account is frozen and will be deleted on {when}.",
  error: "Something went wrong: {message}",
  unavailable: "cumulo cannot be reached right now. Try again in a moment.",
  notFound: "There is no such page.",
  back: "Back",
  skipToContent: "Skip to content",
  share: "Share",
  sharing: "Sharing",
  expiry: "Link expires",
  never: "Never",
  days: "In {n} day(s)",
  linkPassword: "Password for the link (optional)",
  createLink: "Create link",
  linkReady: "Anyone with this link can open it:",
  linkAddress: "Link address",
  recipient: "E-mail or phone of the person",
  shareWithPerson: "Share with this person",
  sharedWith: "Shared with {who}.",
  close: "Close",
  myLinks: "My links",
  noLinks: "No links yet.",
  expires: "expires {when}",
  noExpiry: "no expiry",
  withPassword: "password",
  revoke: "Revoke",
  sharedByMe: "Shared with people",
  sharedWithMe: "Shared with me",
  nothingShared: "Nothing is shared with you yet.",
  sharedWithYou: "Shared with you",
  linkGone: "This link does not work any more (revoked, expired or never valid).",
  linkNeedsPassword: "This link is protected by a password.",
  open: "Open",
  blocked: "This content is not available: it was blocked after a complaint.",
  reportThis: "Report this",
  category: "What is wrong",
  catIllegal: "Illegal content",
  catHarmful: "Harmful content",
  catPrivacy: "It violates my privacy",
  catSpam: "Spam or fraud",
  catCopyright: "It infringes my copyright",
  catOther: "Something else",
  description: "Tell us more",
  contact: "Your e-mail address (for our answer)",
  rightsHolder: "Rights holder",
  work: "The work that is copied",
  goodFaith: "I believe in good faith that this use is not authorised by the rights holder, its agent or the law.",
  accuracy: "The information is accurate and I am authorised to act for the rights holder.",
  signature: "Your full name (signature)",
  sendReport: "Send the report",
  reported: "Thank you: your report was received. Keep this receipt:",
} as const;

export type Key = keyof typeof en;

const zh: Record<Key, string> = {
  appName: "cumulo",
  signIn: "登录",
  signUp: "注册账号",
  signOut: "退出登录",
  email: "电子邮箱",
  password: "密码",
  birthDate: "出生日期",
  terms: "我已阅读并同意服务条款",
  showTerms: "阅读条款",
  noAccount: "还没有账号？",
  haveAccount: "已有账号？",
  minorTitle: "未满 14 周岁？",
  minorText: "未成年人不能自行注册。请由父母或监护人登录后为其创建账号（账号 → 家庭），并由监护人负责。",
  created: "账号已创建，请登录。",
  files: "文件",
  trash: "回收站",
  account: "账号",
  language: "语言",
  newFolder: "新建文件夹",
  folderName: "文件夹名称",
  create: "创建",
  cancel: "取消",
  upload: "上传文件",
  dropHere: "将文件拖放到此处上传",
  name: "名称",
  size: "大小",
  modified: "修改时间",
  actions: "操作",
  download: "下载",
  rename: "重命名",
  delete: "移到回收站",
  restore: "恢复",
  emptyTrash: "清空回收站",
  empty: "这里还没有内容。",
  root: "我的文件",
  used: "已用 {used}，共 {quota}",
  uploading: "正在上传 {name}：{percent}%",
  paused: "{name}：已暂停于 {percent}% —— 再次选择同一文件即可继续",
  resume: "继续",
  pause: "暂停",
  done: "完成",
  loading: "加载中…",
  reactivateTitle: "保留您的账号",
  reactivateIntro: "此链接来自我们发送的账号长期未使用通知。",
  stateActive: "您的账号处于正常状态，数据不会被删除。",
  stateFrozen: "您的账号因长期未使用已被冻结。除非您选择保留，其数据将于 {when} 删除。",
  stateDeleting: "您的账号数据正在删除。",
  stateDeleted: "此账号已于 {when} 删除。",
  keepAccount: "保留我的账号",
  reactivated: "欢迎回来：您的账号已恢复正常，数据不会被删除。",
  linkInvalid: "此链接无效（可能已使用或已过期）。请登录以保留您的账号。",
  signedInAs: "当前账号：{email}",
  frozenBanner: "您的账号已冻结，将于 {when} 删除。",
  error: "出错了：{message}",
  unavailable: "暂时无法连接 cumulo，请稍后再试。",
  notFound: "页面不存在。",
  back: "返回",
  skipToContent: "跳到主要内容",
  share: "分享",
  sharing: "分享",
  expiry: "链接有效期",
  never: "永久有效",
  days: "{n} 天",
  linkPassword: "链接密码（可选）",
  createLink: "创建链接",
  linkReady: "任何拿到此链接的人都可以打开：",
  linkAddress: "链接地址",
  recipient: "对方的邮箱或手机号",
  shareWithPerson: "分享给此人",
  sharedWith: "已分享给 {who}。",
  close: "关闭",
  myLinks: "我的链接",
  noLinks: "还没有链接。",
  expires: "{when} 过期",
  noExpiry: "永久有效",
  withPassword: "有密码",
  revoke: "撤销",
  sharedByMe: "分享给他人",
  sharedWithMe: "与我分享",
  nothingShared: "还没有人与您分享内容。",
  sharedWithYou: "分享给您的内容",
  linkGone: "此链接已失效（已撤销、已过期或从未有效）。",
  linkNeedsPassword: "此链接受密码保护。",
  open: "打开",
  blocked: "此内容因投诉已被屏蔽，无法访问。",
  reportThis: "举报",
  category: "问题类型",
  catIllegal: "违法内容",
  catHarmful: "有害内容",
  catPrivacy: "侵犯我的隐私",
  catSpam: "垃圾信息或欺诈",
  catCopyright: "侵犯我的版权",
  catOther: "其他",
  description: "详细说明",
  contact: "您的邮箱（用于回复）",
  rightsHolder: "权利人",
  work: "被复制的作品",
  goodFaith: "我善意地相信此使用未经权利人、其代理人或法律授权。",
  accuracy: "以上信息准确，且我有权代表权利人行事。",
  signature: "您的全名（签名）",
  sendReport: "提交举报",
  reported: "感谢举报，我们已收到。请保存此回执：",
};

const dictionaries: Record<Lang, Record<Key, string>> = { en, "zh-CN": zh };

function initial(): Lang {
  const kept = window.localStorage.getItem(KEY);
  if (kept === "en" || kept === "zh-CN") return kept;
  return navigator.languages.some((l) => l.toLowerCase().startsWith("zh")) ? "zh-CN" : "en";
}

export const lang = signal<Lang>(initial());

export function setLang(value: Lang): void {
  window.localStorage.setItem(KEY, value);
  document.documentElement.lang = value;
  lang.set(value);
}

export function t(key: Key, values: Record<string, string | number> = {}): string {
  return dictionaries[lang.get()][key].replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ""));
}

/** A date and time in the person's language and time zone, to the minute. */
export function when(date: Date): string {
  return new Intl.DateTimeFormat(lang.get(), { dateStyle: "long", timeStyle: "short" }).format(date);
}

export function bytes(count: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
